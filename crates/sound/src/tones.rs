//! The alert tones, made from sine waves here rather than shipped as files:
//! nothing to package, and each tone is distinct by pitch and rhythm so a
//! floor can tell a level change from a break without looking.

use std::num::NonZero;
use std::time::Duration;

/// One alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    /// New level: two short high beeps.
    LevelChange,
    /// One minute left: one soft mid beep.
    OneMinute,
    /// Break starts: high then low.
    BreakStart,
    /// Play resumes: low then high.
    BreakEnd,
}

/// (frequency Hz, seconds) steps; frequency 0 is silence.
fn steps(t: Tone) -> &'static [(f32, f32)] {
    match t {
        Tone::LevelChange => &[(880.0, 0.18), (0.0, 0.12), (880.0, 0.18)],
        Tone::OneMinute => &[(660.0, 0.30)],
        Tone::BreakStart => &[(880.0, 0.22), (0.0, 0.05), (587.0, 0.35)],
        Tone::BreakEnd => &[(587.0, 0.22), (0.0, 0.05), (880.0, 0.35)],
    }
}

impl Tone {
    pub fn duration(self) -> Duration {
        Duration::from_secs_f32(steps(self).iter().map(|(_, s)| s).sum())
    }

    /// The pitches that sound, in order (silences left out).
    pub fn pitches(self) -> Vec<f32> {
        steps(self)
            .iter()
            .filter(|(f, _)| *f > 0.0)
            .map(|(f, _)| *f)
            .collect()
    }
}

/// Mono samples of `tone` at `rate`, peak `volume` (0–1). Each beep fades in
/// and out over 5 ms so it does not click.
pub fn samples(tone: Tone, volume: f32, rate: u32) -> Vec<f32> {
    let volume = volume.clamp(0.0, 1.0) * 0.8;
    let rate_f = rate as f32;
    let fade = (0.005 * rate_f) as usize;
    let mut out = Vec::new();
    for &(freq, secs) in steps(tone) {
        let n = (secs * rate_f) as usize;
        for i in 0..n {
            if freq == 0.0 {
                out.push(0.0);
                continue;
            }
            let env = if i < fade {
                i as f32 / fade as f32
            } else if n - i < fade {
                (n - i) as f32 / fade as f32
            } else {
                1.0
            };
            let x = (2.0 * std::f32::consts::PI * freq * i as f32 / rate_f).sin();
            out.push(x * env * volume);
        }
    }
    out
}

/// A rodio buffer of `tone` laid out for the device's rate and channels.
pub fn buffer(
    tone: Tone,
    volume: f32,
    rate: NonZero<u32>,
    channels: NonZero<u16>,
) -> rodio::buffer::SamplesBuffer {
    let mono = samples(tone, volume, rate.get());
    let ch = channels.get() as usize;
    let mut data = Vec::with_capacity(mono.len() * ch);
    for s in mono {
        data.extend(std::iter::repeat_n(s, ch));
    }
    rodio::buffer::SamplesBuffer::new(channels, rate, data)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Frequency by counting upward zero crossings.
    fn pitch(s: &[f32], rate: u32) -> f32 {
        let ups = s.windows(2).filter(|w| w[0] < 0.0 && w[1] >= 0.0).count();
        ups as f32 * rate as f32 / s.len() as f32
    }

    #[test]
    fn the_level_beep_is_two_880_hz_beeps() {
        let s = samples(Tone::LevelChange, 1.0, 48_000);
        assert_eq!(s.len(), (0.48 * 48_000.0) as usize);
        let first = &s[..(0.18 * 48_000.0) as usize];
        assert!((pitch(first, 48_000) - 880.0).abs() < 10.0);
        let gap = &s[(0.19 * 48_000.0) as usize..(0.29 * 48_000.0) as usize];
        assert!(gap.iter().all(|x| *x == 0.0));
        assert!(s.iter().all(|x| x.abs() <= 0.8));
    }

    #[test]
    fn volume_scales_and_is_clamped() {
        let loud = samples(Tone::OneMinute, 5.0, 8_000);
        let soft = samples(Tone::OneMinute, 0.25, 8_000);
        let peak = |s: &[f32]| s.iter().fold(0.0f32, |m, x| m.max(x.abs()));
        assert!(peak(&loud) <= 0.8 && peak(&loud) > 0.79);
        assert!((peak(&soft) - 0.2).abs() < 0.01);
    }
}
