//! The shared crates must never depend on Tauri: tests, benchmarks and the
//! standalone server run them headless.

use std::process::Command;

use anyhow::{ensure, Result};

#[test]
fn the_shared_crates_do_not_depend_on_tauri() -> Result<()> {
    for krate in [
        "pitboss-core",
        "pitboss-server",
        "pitboss-client",
        "pitboss-sound",
    ] {
        let out = Command::new(env!("CARGO"))
            .args([
                "tree",
                "--offline",
                "-e",
                "normal",
                "-p",
                krate,
                "--prefix",
                "none",
            ])
            .current_dir(pitboss_system_tests::workspace_root())
            .output()?;
        ensure!(
            out.status.success(),
            "cargo tree failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let tree = String::from_utf8_lossy(&out.stdout);
        ensure!(
            tree.lines().count() > 1,
            "cargo tree printed nothing for {krate}"
        );
        ensure!(
            !tree
                .lines()
                .any(|l| l.starts_with("tauri") || l.starts_with("wry") || l.starts_with("webkit")),
            "{krate} depends on Tauri"
        );
    }
    let out = Command::new(env!("CARGO"))
        .args([
            "tree",
            "--offline",
            "-e",
            "normal",
            "-p",
            "pitboss-core",
            "--prefix",
            "none",
        ])
        .current_dir(pitboss_system_tests::workspace_root())
        .output()?;
    ensure!(
        out.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tree = String::from_utf8_lossy(&out.stdout);
    ensure!(
        tree.lines().count() > 1,
        "cargo tree printed nothing for pitboss-core"
    );
    ensure!(
        !tree
            .lines()
            .any(|l| l.starts_with("tokio ") || l.starts_with("rusqlite")),
        "pitboss-core must stay free of I/O crates"
    );
    Ok(())
}
