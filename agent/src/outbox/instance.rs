//! The outbox's instance id: random, kept across restarts and reboots, and
//! replaced when the file turns out to be a copy (a cloned VM disk, a restored
//! backup, `cp -a` of the data directory). Two agents sending from copies of
//! one outbox can then be told apart.
//!
//! "Where the file lives" is its (device, inode) pair on Unix plus the
//! contents of `/etc/machine-id` when readable. A copy gets a new inode, a
//! cloned machine usually a new machine id (or at least a new disk); a restart
//! or a reboot changes neither. On other platforms the location is not known
//! yet, so the id survives a copy there.
use std::path::Path;

use redb::{ReadableTable, Table};

use super::OutboxError;

const INSTANCE_ID: &str = "instance_id";
const MACHINE_ID: &str = "machine_id";
const DEVICE: &str = "location_dev";
const INODE: &str = "location_ino";

/// Where the outbox file lives; `None` where unknown.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Location {
    pub(crate) file: Option<(u64, u64)>,
    pub(crate) machine_id: Option<String>,
}

impl Location {
    /// The location of the file at `path` on this machine.
    pub(crate) fn of(path: &Path) -> Self {
        Self {
            file: file_id(path),
            machine_id: std::fs::read_to_string("/etc/machine-id")
                .ok()
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty()),
        }
    }

    /// Whether `self` (stored) and `now` name different places. Only what is
    /// known on both sides counts: an unreadable machine id is not a move.
    pub(crate) fn differs_from(&self, now: &Location) -> bool {
        let file = matches!((self.file, now.file), (Some(a), Some(b)) if a != b);
        let machine = matches!((&self.machine_id, &now.machine_id), (Some(a), Some(b)) if a != b);
        file || machine
    }
}

#[cfg(unix)]
fn file_id(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt as _;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

#[cfg(not(unix))]
fn file_id(_path: &Path) -> Option<(u64, u64)> {
    None
}

/// Reads the stored instance id and location; assigns a new id when there is
/// none or the file has moved. Runs inside the open's write transaction.
pub(crate) fn settle(
    meta: &mut Table<'_, &str, u64>,
    labels: &mut Table<'_, &str, &str>,
    here: &Location,
    path: &Path,
) -> Result<String, OutboxError> {
    let stored_id = labels.get(INSTANCE_ID)?.map(|v| v.value().to_owned());
    let stored = Location {
        file: match (meta.get(DEVICE)?, meta.get(INODE)?) {
            (Some(d), Some(i)) => Some((d.value(), i.value())),
            _ => None,
        },
        machine_id: labels.get(MACHINE_ID)?.map(|v| v.value().to_owned()),
    };
    let id = match stored_id {
        Some(id) if !stored.differs_from(here) => {
            if stored != *here {
                // Learn what was unknown before (e.g. a machine id that became
                // readable), without treating it as a move.
                store_location(meta, labels, here)?;
            }
            return Ok(id);
        }
        Some(old) => {
            let id = uuid::Uuid::new_v4().to_string();
            tracing::info!(
                path = %path.display(),
                old_instance_id = %old,
                instance_id = %id,
                "outbox was copied or moved; new instance id {id}"
            );
            id
        }
        None => uuid::Uuid::new_v4().to_string(),
    };
    labels.insert(INSTANCE_ID, id.as_str())?;
    store_location(meta, labels, here)?;
    Ok(id)
}

fn store_location(
    meta: &mut Table<'_, &str, u64>,
    labels: &mut Table<'_, &str, &str>,
    here: &Location,
) -> Result<(), OutboxError> {
    match here.file {
        Some((dev, ino)) => {
            meta.insert(DEVICE, dev)?;
            meta.insert(INODE, ino)?;
        }
        None => {
            meta.remove(DEVICE)?;
            meta.remove(INODE)?;
        }
    }
    match &here.machine_id {
        Some(m) => {
            labels.insert(MACHINE_ID, m.as_str())?;
        }
        None => {
            labels.remove(MACHINE_ID)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loc(file: Option<(u64, u64)>, machine: Option<&str>) -> Location {
        Location {
            file,
            machine_id: machine.map(str::to_owned),
        }
    }

    #[test]
    fn only_known_differences_count_as_a_move() {
        let here = loc(Some((1, 2)), Some("m"));
        assert!(!here.differs_from(&here.clone()));
        assert!(here.differs_from(&loc(Some((1, 3)), Some("m"))), "new inode: a copy");
        assert!(here.differs_from(&loc(Some((9, 2)), Some("m"))), "new device");
        assert!(here.differs_from(&loc(Some((1, 2)), Some("other"))), "another machine");
        assert!(!here.differs_from(&loc(None, None)), "nothing known now");
        assert!(!loc(None, None).differs_from(&here), "nothing known before");
    }
}
