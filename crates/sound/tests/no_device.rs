//! A machine whose default audio device cannot be opened: the player says
//! "sound unavailable" with the reason, keeps answering, never panics.
//! (One test per file: the ALSA configuration is read once per process.)

use pitboss_sound::{Player, Tone};

#[test]
fn no_device_is_a_visible_state_not_a_crash() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir_all(dir.path().join("alsa")).expect("alsa dir");
    // A default that points at a sound card this machine does not have.
    std::fs::write(
        dir.path().join("alsa/asoundrc"),
        "pcm.!default { type hw card 97 }\nctl.!default { type hw card 97 }\n",
    )
    .expect("asoundrc");
    std::env::set_var("XDG_CONFIG_HOME", dir.path());

    let player = Player::start();
    let started = std::time::Instant::now();
    let a = player.check(Tone::LevelChange, 1.0);
    assert!(!a.available);
    assert!(a.message.starts_with("sound unavailable"), "{}", a.message);
    assert!(started.elapsed().as_secs() < 3, "answers at once");
    // Alerts keep being accepted (and skipped) without error.
    for _ in 0..3 {
        player.play(Tone::OneMinute, 0.5);
    }
    assert!(!player.availability().available);
    player.close();
}
