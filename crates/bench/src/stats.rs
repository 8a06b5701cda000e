//! Percentiles and medians of runs.

use serde::Serialize;

/// p50 / p99 / max of one run, in milliseconds.
#[derive(Debug, Clone, Copy, Serialize, Default)]
pub struct Dist {
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
    pub samples: usize,
}

/// Sorts `v` (microseconds) and reads its percentiles.
pub fn dist_us(v: &mut [u32]) -> Dist {
    if v.is_empty() {
        return Dist::default();
    }
    v.sort_unstable();
    let at = |q: f64| {
        let i = ((v.len() as f64 - 1.0) * q).round() as usize;
        f64::from(v[i]) / 1000.0
    };
    Dist {
        p50: at(0.50),
        p99: at(0.99),
        max: f64::from(v[v.len() - 1]) / 1000.0,
        samples: v.len(),
    }
}

/// The median of several runs' figures, and their spread (max − min).
#[derive(Debug, Clone, Copy, Serialize, Default)]
pub struct Median {
    pub median: f64,
    pub spread: f64,
    pub runs: usize,
}

pub fn median(xs: &[f64]) -> Median {
    if xs.is_empty() {
        return Median::default();
    }
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    let m = if v.len() % 2 == 1 {
        v[v.len() / 2]
    } else {
        (v[v.len() / 2 - 1] + v[v.len() / 2]) / 2.0
    };
    Median {
        median: m,
        spread: v[v.len() - 1] - v[0],
        runs: v.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_and_medians_read_what_they_say() {
        let mut v: Vec<u32> = (1..=1000).map(|i| i * 1000).collect();
        let d = dist_us(&mut v);
        assert_eq!((d.p50, d.p99, d.max), (501.0, 990.0, 1000.0));
        let m = median(&[3.0, 1.0, 2.0]);
        assert_eq!((m.median, m.spread, m.runs), (2.0, 2.0, 3));
        assert_eq!(median(&[1.0, 4.0]).median, 2.5);
    }
}
