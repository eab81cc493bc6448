//! Who the outbox's records belong to, and setting an outbox aside.
//!
//! The owner (tenant, site, agent and collector CA) is stored in the `labels`
//! table. An outbox whose records belong to someone else than the running
//! agent's credentials say must never be sent: it is renamed out of the way
//! ([`set_aside`]) and kept for an operator to inspect.
use std::path::{Path, PathBuf};

use outpost_certs::{AgentId, Fingerprint, SiteId, TenantId};
use redb::ReadableDatabase as _;

use super::store::Outcome;
use super::{FILE, LABELS, Outbox, OutboxError};

const TENANT: &str = "owner_tenant";
const SITE: &str = "owner_site";
const AGENT: &str = "owner_agent";
const CA: &str = "owner_ca";

/// Who the outbox's records belong to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutboxOwner {
    /// Tenant.
    pub tenant: TenantId,
    /// Site.
    pub site: SiteId,
    /// Agent.
    pub agent: AgentId,
    /// Fingerprint of the collector CA the agent was enrolled with.
    pub ca: Fingerprint,
}

impl std::fmt::Display for OutboxOwner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "agent {} of tenant {}, site {}, CA sha256:{}",
            self.agent, self.tenant, self.site, self.ca
        )
    }
}

/// How a stored owner relates to the credentials the agent runs with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OwnerMatch {
    /// No owner recorded yet (a new outbox, or one from before owners existed).
    Unowned,
    /// The same owner.
    Same,
    /// The same tenant, site and CA under another agent id (re-enrolled): the
    /// records are the same site's data and are kept.
    Reenrolled {
        /// The stored owner.
        previous: OutboxOwner,
    },
    /// Another tenant, site or CA: the records must not be sent.
    Foreign {
        /// The stored owner.
        previous: OutboxOwner,
    },
}

impl OwnerMatch {
    /// Compares the stored owner with the one wanted now.
    pub fn of(stored: Option<&OutboxOwner>, wanted: &OutboxOwner) -> Self {
        match stored {
            None => Self::Unowned,
            Some(s) if s == wanted => Self::Same,
            Some(s) if s.tenant == wanted.tenant && s.site == wanted.site && s.ca == wanted.ca => {
                Self::Reenrolled { previous: *s }
            }
            Some(s) => Self::Foreign { previous: *s },
        }
    }
}

impl Outbox {
    /// The stored owner, if any.
    pub fn owner(&self) -> Result<Option<OutboxOwner>, OutboxError> {
        self.store.read(|db| {
            let txn = db.begin_read()?;
            let labels = txn.open_table(LABELS)?;
            let get = |key: &'static str| -> Result<Option<String>, OutboxError> {
                Ok(labels.get(key)?.map(|v| v.value().to_owned()))
            };
            let (Some(tenant), Some(site), Some(agent), Some(ca)) = (get(TENANT)?, get(SITE)?, get(AGENT)?, get(CA)?)
            else {
                return Ok(None);
            };
            fn parse<T: std::str::FromStr>(key: &'static str, text: &str) -> Result<T, OutboxError>
            where
                T::Err: std::fmt::Display,
            {
                text.parse().map_err(|e: T::Err| OutboxError::Meta {
                    key,
                    reason: e.to_string(),
                })
            }
            Ok(Some(OutboxOwner {
                tenant: parse(TENANT, &tenant)?,
                site: parse(SITE, &site)?,
                agent: parse(AGENT, &agent)?,
                ca: parse(CA, &ca)?,
            }))
        })
    }

    /// Records the owner (all four parts in one transaction).
    pub fn set_owner(&self, owner: &OutboxOwner) -> Result<(), OutboxError> {
        let values = [
            (TENANT, owner.tenant.to_string()),
            (SITE, owner.site.to_string()),
            (AGENT, owner.agent.to_string()),
            (CA, owner.ca.to_string()),
        ];
        self.store.write(|txn| {
            let mut labels = txn.open_table(LABELS)?;
            for (key, value) in &values {
                labels.insert(*key, value.as_str())?;
            }
            Ok(Outcome::Commit(()))
        })
    }
}

/// Renames `DIR/outbox.redb` to
/// `DIR/outbox.set-aside.<UTC yyyymmddThhmmssZ>.<old agent id or "unknown">.redb`
/// (with `-2`, `-3`… after the time if that name is taken: never overwriting),
/// logs at warn with the new path and `why`, and returns the new path;
/// `Ok(None)` when there is no outbox. The agent must not be running: an
/// outbox still open elsewhere is refused.
pub fn set_aside(data_dir: &Path, why: &str) -> std::io::Result<Option<PathBuf>> {
    let path = data_dir.join(FILE);
    if !path.try_exists()? {
        return Ok(None);
    }
    let agent = stored_agent(&path)?.unwrap_or_else(|| "unknown".to_owned());
    let now = time::OffsetDateTime::now_utc();
    let stamp = format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second()
    );
    let mut target = data_dir.join(format!("outbox.set-aside.{stamp}.{agent}.redb"));
    let mut n = 1u32;
    while target.try_exists()? {
        n += 1;
        target = data_dir.join(format!("outbox.set-aside.{stamp}-{n}.{agent}.redb"));
    }
    std::fs::rename(&path, &target)?;
    tracing::warn!(
        path = %path.display(),
        set_aside = %target.display(),
        why,
        "outbox set aside; its records will not be sent"
    );
    Ok(Some(target))
}

/// The agent id stored in the outbox at `path`, read without modifying the file.
/// `None` when it cannot be read (damaged, from before owners existed);
/// an error when the outbox is open in another process.
fn stored_agent(path: &Path) -> std::io::Result<Option<String>> {
    let db = match redb::Builder::new().open_read_only(path) {
        Ok(db) => db,
        Err(redb::DatabaseError::DatabaseAlreadyOpen) => {
            return Err(std::io::Error::new(
                std::io::ErrorKind::ResourceBusy,
                format!("the outbox {} is in use (is the agent running?)", path.display()),
            ));
        }
        Err(error) => {
            tracing::warn!(path = %path.display(), %error, "cannot read the owner of the outbox being set aside");
            return Ok(None);
        }
    };
    let agent = db
        .begin_read()
        .ok()
        .and_then(|txn| txn.open_table(LABELS).ok())
        .and_then(|labels| labels.get(AGENT).ok().flatten().map(|v| v.value().to_owned()))
        // Only a well-formed id goes into a file name.
        .and_then(|text| text.parse::<AgentId>().ok())
        .map(|id| id.to_string());
    Ok(agent)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner() -> OutboxOwner {
        OutboxOwner {
            tenant: TenantId::random(),
            site: SiteId::random(),
            agent: AgentId::random(),
            ca: Fingerprint::of_der(b"ca"),
        }
    }

    #[test]
    fn owners_compare_by_tenant_site_and_ca() {
        let a = owner();
        assert_eq!(OwnerMatch::of(None, &a), OwnerMatch::Unowned);
        assert_eq!(OwnerMatch::of(Some(&a), &a), OwnerMatch::Same);
        let re = OutboxOwner {
            agent: AgentId::random(),
            ..a
        };
        assert_eq!(OwnerMatch::of(Some(&a), &re), OwnerMatch::Reenrolled { previous: a });
        for other in [
            OutboxOwner {
                tenant: TenantId::random(),
                ..re
            },
            OutboxOwner {
                site: SiteId::random(),
                ..re
            },
            OutboxOwner {
                ca: Fingerprint::of_der(b"another ca"),
                ..re
            },
        ] {
            assert_eq!(OwnerMatch::of(Some(&a), &other), OwnerMatch::Foreign { previous: a });
        }
    }

    #[test]
    fn the_owner_round_trips_and_survives_reopening() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(FILE);
        let a = owner();
        {
            let ob = Outbox::open(&path, 100).expect("open");
            assert_eq!(ob.owner().expect("owner"), None);
            ob.set_owner(&a).expect("set");
            assert_eq!(ob.owner().expect("owner"), Some(a));
        }
        let ob = Outbox::open(&path, 100).expect("reopen");
        assert_eq!(ob.owner().expect("owner"), Some(a));
    }

    #[test]
    fn set_aside_renames_without_overwriting_and_names_the_agent() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(set_aside(dir.path(), "test").expect("nothing to do"), None);
        let a = owner();
        let mut names = Vec::new();
        for _ in 0..3 {
            {
                let ob = Outbox::open(&dir.path().join(FILE), 100).expect("open");
                ob.set_owner(&a).expect("set");
            }
            let moved = set_aside(dir.path(), "test").expect("set aside").expect("moved");
            let name = moved.file_name().and_then(|n| n.to_str()).expect("name").to_owned();
            assert!(name.starts_with("outbox.set-aside."), "{name}");
            assert!(name.ends_with(&format!(".{}.redb", a.agent)), "{name}");
            assert!(!dir.path().join(FILE).exists());
            names.push(name);
        }
        names.sort();
        names.dedup();
        assert_eq!(names.len(), 3, "three distinct files, none overwritten: {names:?}");
    }

    #[test]
    fn set_aside_of_an_unowned_outbox_says_unknown_and_refuses_an_open_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let open = Outbox::open(&dir.path().join(FILE), 100).expect("open");
        let err = set_aside(dir.path(), "test").expect_err("in use");
        assert!(err.to_string().contains("in use"), "{err}");
        drop(open);
        let moved = set_aside(dir.path(), "test").expect("set aside").expect("moved");
        assert!(
            moved.to_string_lossy().ends_with(".unknown.redb"),
            "{}",
            moved.display()
        );
    }
}
