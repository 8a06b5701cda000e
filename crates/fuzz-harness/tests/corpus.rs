//! Replays the committed fuzz inputs through the same checks the fuzzer
//! runs, on stable Rust, as part of `cargo xtask test`: a crash the fuzzer
//! once found, its input kept in `fuzz/seeds/<target>/`, fails this test if
//! the bug comes back, and so does any input of the minimized corpus in
//! `fuzz/corpus/<target>/`.
//!
//! A missing or empty folder fails too: a replay of nothing would pass
//! whatever the code does.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

/// Every file of one input folder, sorted, failing when there is none.
fn inputs(kind: &str, target: &str) -> Result<Vec<PathBuf>> {
    files_in(&fuzz_dir().join(kind).join(target))
}

fn files_in(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("no folder {}", dir.display()))?
        .map(|e| e.map(|e| e.path()))
        .collect::<std::io::Result<_>>()?;
    files.retain(|p| p.is_file());
    files.sort();
    if files.is_empty() {
        bail!("{} is empty: nothing would be replayed", dir.display());
    }
    Ok(files)
}

/// Runs `check` on every input of the target's corpus and seeds, and
/// names every input that panics (not only the first).
fn replay(target: &str, check: fn(&[u8])) -> Result<usize> {
    let mut failed = Vec::new();
    let mut ran = 0;
    for kind in ["corpus", "seeds"] {
        for path in inputs(kind, target)? {
            let data = std::fs::read(&path)?;
            if catch_unwind(AssertUnwindSafe(|| check(&data))).is_err() {
                failed.push(path.display().to_string());
            }
            ran += 1;
        }
    }
    if !failed.is_empty() {
        bail!(
            "{} of {ran} {target} inputs fail (replay one with `cargo +nightly fuzz run {target} FILE` in fuzz/):\n{}",
            failed.len(),
            failed.join("\n")
        );
    }
    Ok(ran)
}

#[test]
fn the_frame_corpus_replays_clean() -> Result<()> {
    let n = replay("frame", pitboss_fuzz_harness::frame::check)?;
    eprintln!("frame: {n} inputs");
    Ok(())
}

#[test]
fn the_op_corpus_replays_clean() -> Result<()> {
    let n = replay("op", pitboss_fuzz_harness::op::check)?;
    eprintln!("op: {n} inputs");
    Ok(())
}

#[test]
fn the_clock_corpus_replays_clean() -> Result<()> {
    let n = replay("clock", pitboss_fuzz_harness::clock::check)?;
    eprintln!("clock: {n} inputs");
    Ok(())
}

#[test]
fn a_missing_or_empty_corpus_fails_the_replay() -> Result<()> {
    assert!(inputs("corpus", "no-such-target").is_err());
    let empty = std::env::temp_dir().join(format!("pitboss-empty-corpus-{}", std::process::id()));
    std::fs::create_dir_all(empty.join("sub"))?;
    let result = files_in(&empty);
    std::fs::remove_dir_all(&empty)?;
    assert!(result.is_err(), "a folder without files replayed as clean");
    Ok(())
}
