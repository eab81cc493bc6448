//! Writing key material and certificates to disk.
use std::io::Write;
use std::path::Path;

/// Writes `contents` to `path` atomically (temporary file, fsync, rename), with
/// mode 0600 on Unix: a crash leaves either the old file or the new one, never a
/// torn key, and no other user can read it.
///
/// The temporary file has a random name and is created exclusively
/// (`O_CREAT|O_EXCL`), so a symlink or file planted in the directory is never
/// followed or reused; its mode is set on the open file, whatever the umask,
/// before any secret is written; the rename replaces `path` itself, even when
/// `path` is a symlink, and never writes through it.
pub fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    write_atomic(path, contents, 0o600)
}

/// Like [`write_private`] but world-readable (certificates).
pub fn write_public(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    write_atomic(path, contents, 0o644)
}

/// Attempts at finding an unused temporary name; a collision of 64 random
/// bits happens only when someone plants names on purpose.
const TEMP_ATTEMPTS: usize = 8;

fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> std::io::Result<()> {
    use rand::Rng as _;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "path has no file name"))?;
    let mut attempt = 0;
    let (tmp, mut file) = loop {
        let tmp = dir.join(format!(".{name}.{:016x}.tmp", rand::thread_rng().r#gen::<u64>()));
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(mode);
        }
        match options.open(&tmp) {
            Ok(f) => break (tmp, f),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && attempt + 1 < TEMP_ATTEMPTS => attempt += 1,
            Err(e) => return Err(e),
        }
    };
    let result = (|| {
        // The umask may have narrowed or (for 0644) widened nothing; set the
        // exact mode on the file we hold before the secret goes in.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            file.set_permissions(std::fs::Permissions::from_mode(mode))?;
        }
        #[cfg(not(unix))]
        let _ = mode;
        file.write_all(contents)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
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

    #[test]
    fn never_writes_through_symlinks_or_reuses_planted_files() {
        let dir = std::env::temp_dir().join(format!("outpost-files-symlink-{}", std::process::id()));
        create_private_dir(&dir).expect("dir");
        let victim = dir.join("victim");
        std::fs::write(&victim, b"keep me").expect("victim");
        // The destination is a symlink: it is replaced, its target untouched.
        let p = dir.join("identity.pem");
        std::os::unix::fs::symlink(&victim, &p).expect("symlink");
        write_private(&p, b"secret").expect("write");
        assert_eq!(std::fs::read(&victim).expect("victim"), b"keep me");
        let meta = std::fs::symlink_metadata(&p).expect("meta");
        assert!(meta.file_type().is_file());
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        // A world-readable file already at the path does not keep its mode.
        let q = dir.join("ca.key");
        std::fs::write(&q, b"old").expect("old");
        std::fs::set_permissions(&q, std::fs::Permissions::from_mode(0o666)).expect("chmod");
        write_private(&q, b"new").expect("write");
        assert_eq!(std::fs::metadata(&q).expect("meta").permissions().mode() & 0o777, 0o600);
        // No temporary files are left behind.
        let left: Vec<_> = std::fs::read_dir(&dir)
            .expect("list")
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(left.is_empty(), "{left:?}");
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }
}
