//! The files the lab reads and writes: presets, CSV data, and output that never leaves a
//! half-written file. The only module below the window and the command line that touches the
//! file system.

use std::io::Write;
use std::path::Path;

use crate::core::data::Dataset;
use crate::preset::csv::parse_csv;

/// Writes `bytes` to a temporary file beside `path`, flushes it to disk, then renames it over
/// `path`. On any error the temporary file is removed and `path` is untouched.
///
/// # Errors
/// When the folder is missing or not writable, or the disk is full.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .ok_or_else(|| format!("{} is not a file path", path.display()))?;
    let tmp = dir.join(temporary_name(&name.to_string_lossy()));
    let result = (|| -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    result.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        format!("cannot write {}: {e}", shown(path))
    })
}

/// The temporary file's name for writing `name`: `.{name}.{pid}.tmp`, with `name` shortened (at a
/// character boundary) so the whole stays within the 255 bytes most file systems allow: a legal
/// 250-byte output name must not fail because of the suffix.
fn temporary_name(name: &str) -> String {
    let suffix = format!(".{}.tmp", std::process::id());
    let room = 255 - 1 - suffix.len();
    let mut end = name.len().min(room);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    format!(".{}{suffix}", &name[..end])
}

/// Checks that `path` (given as `flag`) is a readable regular file, so that a folder, a missing
/// file and a device such as `/dev/zero` (which would never end) each get their own message.
///
/// # Errors
/// Missing, a folder, or not a regular file.
pub fn check_input_file(flag: &str, path: &Path) -> Result<(), String> {
    let shown = shown(path);
    match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(format!("{flag} {shown}: no such file")),
        Err(e) => Err(format!("{flag} {shown}: {e}")),
        Ok(m) if m.is_dir() => Err(format!("{flag} {shown}: is a folder, not a file")),
        Ok(m) if !m.is_file() => Err(format!(
            "{flag} {shown}: is not a regular file (a device, pipe or socket cannot be read as data)"
        )),
        Ok(_) => Ok(()),
    }
}

/// A path as messages print it: control characters escaped, at most 200 characters.
#[must_use]
pub fn shown(path: &Path) -> String {
    crate::preset::csv::quote_at_most(&path.display().to_string(), 200)
}

/// The size of the file at `path` in bytes, if it can be read.
#[must_use]
pub fn file_size(path: &Path) -> Option<u64> {
    std::fs::metadata(path).ok().map(|m| m.len())
}

/// Whether `a` and `b` name the same existing file (after resolving links and `..`).
#[must_use]
pub fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// The memory the machine has available now, in bytes (Linux: `MemAvailable` of
/// `/proc/meminfo`); `None` where it cannot be read.
#[must_use]
pub fn available_memory() -> Option<f64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024.0)
}

/// How the first row of the CSV file at `path` was read ([`crate::preset::csv::header_summary`]),
/// from its first 64 KB.
#[must_use]
pub fn csv_header_summary(path: &Path) -> Option<String> {
    use std::io::Read;
    let mut head = Vec::new();
    std::fs::File::open(path)
        .ok()?
        .take(65_536)
        .read_to_end(&mut head)
        .ok()?;
    let text = String::from_utf8_lossy(&head);
    // The last line may be cut: only the first complete one matters.
    Some(crate::preset::csv::header_summary(&text))
}

/// Reads and parses a CSV file ([`parse_csv`]).
///
/// # Errors
/// A missing or unreadable file, or a parse error.
pub fn read_csv(path: &Path) -> Result<Dataset, String> {
    check_input_file("CSV file", path)?;
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", shown(path)))?;
    parse_csv(&text, &shown(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temporary_names_stay_within_255_bytes() {
        let long = "a".repeat(250) + ".json";
        let tmp = temporary_name(&long);
        assert!(
            tmp.len() <= 255 && tmp.starts_with(".aaa") && tmp.ends_with(".tmp"),
            "{}",
            tmp.len()
        );
        // Multi-byte characters are cut at a boundary.
        let tmp = temporary_name(&"é".repeat(127));
        assert!(tmp.len() <= 255);
        assert_eq!(temporary_name("t.json"), format!(".t.json.{}.tmp", std::process::id()));
    }

    #[test]
    fn input_files_are_told_apart() {
        assert!(
            check_input_file("--data", Path::new("/nonexistent/x.csv"))
                .unwrap_err()
                .contains("no such file")
        );
        assert!(
            check_input_file("--data", Path::new("/tmp"))
                .unwrap_err()
                .contains("is a folder")
        );
        assert!(
            check_input_file("--data", Path::new("/dev/zero"))
                .unwrap_err()
                .contains("not a regular file")
        );
    }
}
