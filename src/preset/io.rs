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
    let tmp = dir.join(format!(".{}.{}.tmp", name.to_string_lossy(), std::process::id()));
    let result = (|| -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    result.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        format!("cannot write {}: {e}", path.display())
    })
}

/// Reads and parses a CSV file ([`parse_csv`]).
///
/// # Errors
/// A missing or unreadable file, or a parse error.
pub fn read_csv(path: &Path) -> Result<Dataset, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    parse_csv(&text, &path.display().to_string())
}
