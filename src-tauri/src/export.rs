//! Where an exported audit trail goes and what it is called: the user's
//! download folder, a name that says which event and when, never over an
//! earlier export. Kept apart from the shell so the naming can be tested
//! without a window.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use tauri::{AppHandle, Manager, Runtime};

/// The download folder: `XDG_DOWNLOAD_DIR` when set (what a Linux desktop
/// session exports), else the platform's download folder (user-dirs.dirs),
/// else the home folder; a director looks in one of those first.
pub fn download_dir<R: Runtime>(app: &AppHandle<R>) -> PathBuf {
    if let Some(d) = std::env::var_os("XDG_DOWNLOAD_DIR").map(PathBuf::from) {
        if d.is_absolute() {
            return d;
        }
    }
    app.path()
        .download_dir()
        .or_else(|_| app.path().home_dir())
        .unwrap_or_else(|_| std::env::temp_dir())
}

/// The local civil time of `ms` as `yyyymmdd-hhmm`: the director reads
/// file names in the venue's time, not UTC.
pub fn stamp(ms: i64) -> String {
    let secs = (ms / 1000) as libc::time_t;
    // SAFETY: localtime_r writes only into `tm`, which lives on this stack
    // frame; it returns null on failure, checked below.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    let ok = unsafe { !libc::localtime_r(&secs, &mut tm).is_null() };
    if !ok {
        return format!("{}", ms / 60_000);
    }
    format!(
        "{:04}{:02}{:02}-{:02}{:02}",
        tm.tm_year + 1900,
        tm.tm_mon + 1,
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min
    )
}

/// A file name for the trail of `event_id` exported at `stamp`; the id is
/// the server's, but only safe characters go into a file name.
pub fn file_name(event_id: &str, stamp: &str) -> String {
    let id: String = event_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("pitboss-audit-{id}-{stamp}.csv")
}

/// Writes the CSV into `dir` (made if missing). A second export in the same
/// minute gets " (2)", " (3)"… rather than replacing the first: an audit
/// file someone already sent on must not change under them.
pub fn write_csv(dir: &Path, event_id: &str, csv: &str) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let base = file_name(event_id, &stamp(pitboss_client::time::wall_ms()));
    let mut path = dir.join(&base);
    let mut n = 2;
    loop {
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(mut f) => {
                use std::io::Write as _;
                f.write_all(csv.as_bytes())
                    .with_context(|| format!("cannot write {}", path.display()))?;
                f.sync_all()?;
                return Ok(path);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && n < 100 => {
                path = dir.join(base.replace(".csv", &format!(" ({n}).csv")));
                n += 1;
            }
            Err(e) => return Err(e).with_context(|| format!("cannot write {}", path.display())),
        }
    }
}

/// Data rows of a CSV text: records after the header. A quoted cell may
/// hold line breaks (notes often do), so lines are not records.
pub fn data_rows(csv: &str) -> usize {
    let mut records = 0usize;
    let mut quoted = false;
    let mut any = false;
    for c in csv.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                any = true;
            }
            '\n' if !quoted => {
                if any {
                    records += 1;
                }
                any = false;
            }
            '\r' => {}
            _ => any = true,
        }
    }
    if any {
        records += 1;
    }
    records.saturating_sub(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_name_says_which_event_and_when() {
        assert_eq!(
            file_name("ev-1", "20261202-2114"),
            "pitboss-audit-ev-1-20261202-2114.csv"
        );
        assert_eq!(
            file_name("../x y", "20261202-2114"),
            "pitboss-audit-___x_y-20261202-2114.csv"
        );
        let s = stamp(1_700_000_000_000);
        assert_eq!(s.len(), 13, "{s}");
        assert_eq!(&s[8..9], "-");
    }

    #[test]
    fn rows_are_records_not_lines() {
        let csv = "seq,summary\n1,\"a note\nwith a line break\"\n2,plain\n";
        assert_eq!(data_rows(csv), 2);
        assert_eq!(data_rows("seq,summary\n"), 0);
        assert_eq!(data_rows("seq,summary\r\n1,x\r\n"), 1);
    }

    #[test]
    fn a_second_export_never_replaces_the_first() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let a = write_csv(dir.path(), "ev-1", "h\n1\n")?;
        let b = write_csv(dir.path(), "ev-1", "h\n1\n2\n")?;
        assert_ne!(a, b);
        assert_eq!(std::fs::read_to_string(&a)?, "h\n1\n");
        assert_eq!(std::fs::read_to_string(&b)?, "h\n1\n2\n");
        Ok(())
    }
}
