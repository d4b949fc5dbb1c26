//! Writing a file so that readers see the old version or the new one, never
//! half of one: a temporary file in the same directory, synced, renamed.

use std::fs;
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Writes `path` atomically with whatever `fill` writes, creating the parent
/// directory. The file is mode 0644 (temporary files start 0600; our files
/// are meant to be read by CI tooling and other users).
pub fn write(path: &Path, fill: impl FnOnce(&mut dyn Write) -> io::Result<()>) -> io::Result<()> {
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    fs::create_dir_all(dir)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut temp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .tempfile_in(dir)?;
    {
        let mut writer = BufWriter::new(temp.as_file_mut());
        fill(&mut writer)?;
        writer.flush()?;
    }
    temp.as_file()
        .set_permissions(fs::Permissions::from_mode(0o644))?;
    // Without this a crash soon after the rename can leave an empty file
    // under the final name on some file systems.
    temp.as_file().sync_all()?;
    temp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_the_whole_file_readable_by_others_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/report.xml");
        write(&path, |w| w.write_all(b"<a/>")).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "<a/>");
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o644
        );
        let failed = write(&path, |_| Err(io::Error::other("disk full")));
        assert!(failed.is_err());
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            "<a/>",
            "a failed write leaves the old file"
        );
        assert_eq!(
            fs::read_dir(path.parent().unwrap()).unwrap().count(),
            1,
            "no temporary file left"
        );
    }
}
