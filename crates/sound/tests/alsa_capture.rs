//! rodio really plays: ALSA's `file` PCM over its `null` PCM writes what
//! the default device is given to a WAV file, and the level-change alert is
//! found in it as two beeps at 880 Hz. Samples are asserted, not timing: the
//! null device consumes audio faster than real time.
//!
//! The ALSA configuration is loaded through `XDG_CONFIG_HOME` pointing at a
//! temporary folder, never the user's home. This file holds one test so the
//! environment is set before ALSA first reads its configuration.

use pitboss_sound::{Player, Tone};

const ASOUNDRC: &str = r#"
pcm.!default {
    type plug
    slave {
        pcm "pitboss_capture"
        format S16_LE
        rate 48000
        channels 2
    }
}
pcm.pitboss_capture {
    type file
    slave.pcm "null"
    file {
        @func getenv
        vars [ PITBOSS_ALSA_WAV ]
        default "/nonexistent/pitboss-alsa.wav"
    }
    format "wav"
}
"#;

/// Interleaved 16-bit stereo frames after the WAV's `data` tag; the left
/// channel only.
fn left_channel(wav: &[u8]) -> Vec<i16> {
    let at = wav
        .windows(4)
        .position(|w| w == b"data")
        .expect("a WAV data chunk");
    wav[at + 8..]
        .chunks_exact(4)
        .map(|f| i16::from_le_bytes([f[0], f[1]]))
        .collect()
}

/// Runs of sound separated by at least 20 ms of silence, as (start, end).
fn bursts(s: &[i16], rate: usize) -> Vec<(usize, usize)> {
    let quiet_gap = rate / 50;
    let mut out: Vec<(usize, usize)> = Vec::new();
    for (i, x) in s.iter().enumerate() {
        if x.unsigned_abs() > 500 {
            match out.last_mut() {
                Some((_, end)) if i - *end <= quiet_gap => *end = i,
                _ => out.push((i, i)),
            }
        }
    }
    out
}

fn pitch(s: &[i16], rate: usize) -> f64 {
    let ups = s.windows(2).filter(|w| w[0] < 0 && w[1] >= 0).count();
    ups as f64 * rate as f64 / s.len() as f64
}

#[test]
fn the_level_change_alert_reaches_the_device_as_two_880_hz_beeps() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir_all(dir.path().join("alsa")).expect("alsa dir");
    std::fs::write(dir.path().join("alsa/asoundrc"), ASOUNDRC).expect("asoundrc");
    let wav = dir.path().join("captured.wav");
    // Set before anything in this process touches ALSA.
    std::env::set_var("XDG_CONFIG_HOME", dir.path());
    std::env::set_var("PITBOSS_ALSA_WAV", &wav);

    let player = Player::start();
    let a = player.play_and_wait(Tone::LevelChange, 1.0);
    assert!(a.available, "the capture device opens: {}", a.message);
    player.close();

    let bytes = std::fs::read(&wav).expect("ALSA wrote the capture file");
    let left = left_channel(&bytes);
    let rate = 48_000;
    let b = bursts(&left, rate);
    assert_eq!(b.len(), 2, "two beeps, found bursts at {b:?}");
    for (start, end) in b {
        let secs = (end - start) as f64 / rate as f64;
        assert!((0.15..0.21).contains(&secs), "a beep of {secs:.3} s");
        let f = pitch(&left[start..end], rate);
        assert!((f - 880.0).abs() < 15.0, "a beep at {f:.1} Hz");
    }
}
