//! A size-limited tmpfs, for tests that need a disk that really fills up.
//! Mounting needs root (CI runs as root); elsewhere [`Tmpfs::mount`] says so
//! and the test is skipped, unless `OUTPOST_REQUIRE_TMPFS=1` makes that a failure.
use std::path::Path;
use std::process::Command;

/// A mounted tmpfs, unmounted on drop (also when the test fails).
pub struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` (as `mount -o size=` takes it, e.g. `32m`) on a
    /// fresh directory; `None` when not running as root.
    pub fn mount(size: &str) -> Option<Self> {
        if !is_root() {
            assert!(
                std::env::var("OUTPOST_REQUIRE_TMPFS").as_deref() != Ok("1"),
                "OUTPOST_REQUIRE_TMPFS=1 but mounting a tmpfs needs root"
            );
            eprintln!("not root: skipping a test that mounts a tmpfs");
            return None;
        }
        let dir = tempfile::tempdir().expect("mount point");
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size},mode=0700"), "tmpfs"])
            .arg(dir.path())
            .status()
            .expect("run mount");
        assert!(status.success(), "mount -t tmpfs failed: {status}");
        Some(Self { dir })
    }

    /// The mount point.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Bytes available to new data, as `df` reports them.
    pub fn available(&self) -> u64 {
        let out = Command::new("df")
            .args(["--output=avail", "-B1"])
            .arg(self.dir.path())
            .output()
            .expect("run df");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .nth(1)
            .and_then(|l| l.trim().parse().ok())
            .expect("df prints the available bytes")
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let unmounted = Command::new("umount")
            .arg(self.dir.path())
            .status()
            .is_ok_and(|s| s.success());
        if !unmounted {
            // Still busy (a process that outlived its test): detach it now,
            // the kernel frees it when the last user goes.
            let _ = Command::new("umount").arg("-l").arg(self.dir.path()).status();
        }
    }
}

/// Whether this process runs with effective user id 0.
fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|ids| ids.split_whitespace().nth(1).map(|euid| euid == "0"))
        })
        .unwrap_or(false)
}
