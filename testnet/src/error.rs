//! Why a test network could not be built or used.

/// A failure to build or use a [`TestNet`](crate::TestNet).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TestNetError {
    /// This machine or user cannot build test networks at all; tests skip on
    /// this error unless `OUTPOST_REQUIRE_NETNS=1`.
    #[error("test network unavailable: {needed}")]
    Unavailable {
        /// What is missing, phrased as what to do about it.
        needed: String,
    },
    /// An `ip` (or other setup) command failed.
    #[error("`{command}` failed ({status}): {stderr}")]
    Command {
        /// The command line.
        command: String,
        /// Its exit status.
        status: String,
        /// What it printed on stderr.
        stderr: String,
    },
    /// Starting a process or thread, or a file operation, failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// All 254 subnets are taken by live test networks.
    #[error("no free test subnet: 254 test networks already exist (see `ip netns list`)")]
    NoFreeSubnet,
    /// A host service did not come up in time.
    #[error("{what} not ready after {waited:?}")]
    NotReady {
        /// Which service on which host.
        what: String,
        /// How long we waited.
        waited: std::time::Duration,
    },
    /// Entering a namespace with setns(2) failed.
    #[error("cannot enter network namespace {namespace}: {source}")]
    Setns {
        /// The namespace name.
        namespace: String,
        /// The errno.
        source: nix::Error,
    },
}

impl TestNetError {
    pub(crate) fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            what: what.into(),
            source,
        }
    }
}
