//! Running code inside a network namespace from the test process.
//!
//! A thread can join another network namespace with setns(2) without
//! affecting the rest of the process; sockets it (or threads it starts)
//! opens belong to that namespace for their whole life. So the code runs on
//! a fresh thread that enters the namespace first and ends afterwards, and a
//! thread of the test harness never changes namespace.

use std::fs::File;
use std::path::Path;

use nix::sched::{CloneFlags, setns};

use crate::TestNetError;

/// Moves the calling thread into namespace `ns`.
pub(crate) fn enter(ns: &str) -> Result<(), TestNetError> {
    let path = Path::new("/run/netns").join(ns);
    let file = File::open(&path).map_err(|e| TestNetError::io(format!("opening {}", path.display()), e))?;
    setns(&file, CloneFlags::CLONE_NEWNET).map_err(|source| TestNetError::Setns {
        namespace: ns.to_owned(),
        source,
    })
}

/// Runs `f` on a new thread inside namespace `ns` and returns its result; a
/// panic in `f` is resumed on the caller's thread, so assertions inside `f`
/// fail the test as usual.
pub(crate) fn run_in<T, F>(ns: &str, f: F) -> Result<T, TestNetError>
where
    F: FnOnce() -> T + Send,
    T: Send,
{
    std::thread::scope(|scope| {
        let thread = std::thread::Builder::new()
            .name(format!("netns {ns}"))
            .spawn_scoped(scope, || {
                enter(ns)?;
                Ok(f())
            })
            .map_err(|e| TestNetError::io("starting a thread", e))?;
        match thread.join() {
            Ok(result) => result,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}
