//! Writing key material and certificates to disk.
use std::io::Write;
use std::path::Path;

/// Writes `contents` to `path` atomically (temporary file, fsync, rename), with
/// mode 0600 on Unix: a crash leaves either the old file or the new one, never a
/// torn key, and no other user can read it.
pub fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    write_atomic(path, contents, 0o600)
}

/// Like [`write_private`] but world-readable (certificates).
pub fn write_public(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    write_atomic(path, contents, 0o644)
}

fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp{}", std::process::id()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = options.open(&tmp)?;
    file.write_all(contents)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&tmp, path)?;
    #[cfg(unix)]
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Creates a directory (and parents) readable only by its owner.
pub fn create_private_dir(path: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(path)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn private_files_are_0600_and_replaced_whole() {
        let dir = std::env::temp_dir().join(format!("outpost-files-test-{}", std::process::id()));
        create_private_dir(&dir).expect("dir");
        let p = dir.join("key.pem");
        write_private(&p, b"one").expect("write");
        write_private(&p, b"two").expect("rewrite");
        assert_eq!(std::fs::read(&p).expect("read"), b"two");
        assert_eq!(std::fs::metadata(&p).expect("meta").permissions().mode() & 0o777, 0o600);
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }
}
