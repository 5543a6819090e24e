//! Writing files that hold secrets: created with mode 0600 before anything is written to them, and
//! replaced atomically so a reader never sees half a file.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Writes `content` (plus a newline) to `path` with mode 0600, replacing the file atomically.
pub fn write_private(path: &Path, content: &str) -> Result<(), String> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let name = path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
    let temp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut file = match create_private(&temp) {
            // left over from a crashed run, or planted: removed (a link itself, not what it points at),
            // then made anew; planted again in between, the write fails rather than write into it
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                std::fs::remove_file(&temp)?;
                create_private(&temp)?
            }
            other => other?,
        };
        writeln!(file, "{content}")?;
        file.sync_all()?;
        std::fs::rename(&temp, path)
    })();
    result.map_err(|e| {
        let _ = std::fs::remove_file(&temp);
        format!("cannot write {}: {e}", path.display())
    })
}

/// A new file with mode 0600 from its creation on: `create_new` (O_EXCL) neither opens an existing
/// file, whose mode would stay, nor follows a link.
fn create_private(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    /// Someone who can write in the directory plants the temporary file beforehand: a readable file
    /// of theirs, or a link to a file they can read. The secret goes into neither, and the result is 0600.
    #[test]
    fn a_planted_temporary_file_gets_no_secret() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config");
        let temp = dir.path().join(format!(".config.{}.tmp", std::process::id()));
        let elsewhere = dir.path().join("readable-by-others");
        std::fs::write(&elsewhere, "").unwrap();
        std::fs::set_permissions(&elsewhere, std::fs::Permissions::from_mode(0o644)).unwrap();
        std::os::unix::fs::symlink(&elsewhere, &temp).unwrap();
        super::write_private(&path, "secret-1").unwrap();
        assert_eq!(std::fs::read_to_string(&elsewhere).unwrap(), "", "the secret went through the planted link");
        assert_eq!(std::fs::symlink_metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);

        std::fs::write(&temp, "").unwrap();
        std::fs::set_permissions(&temp, std::fs::Permissions::from_mode(0o644)).unwrap();
        super::write_private(&path, "secret-2").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "secret-2\n");
        assert_eq!(std::fs::symlink_metadata(&path).unwrap().permissions().mode() & 0o777, 0o600, "the planted file's mode was kept");
    }
}
