//! One change feed per collector for the live overview.
//!
//! Every open `/events` stream used to poll the database itself, so 100 open
//! tabs meant 100 overview queries every 2 s. Now one task per `ConsoleState`
//! (that is, per collector) reads everything once per
//! [`FEED_INTERVAL`] and publishes the result on a `watch` channel; each stream
//! takes the latest [`Snapshot`] and cuts it down to what its own session may
//! see ([`Snapshot::overview_json`]).
//!
//! Tenancy: the feed reads every tenant (it serves MSP administrators and
//! tenant users alike), so the per-stream filter is the boundary. It keys on
//! the [`Viewer`] of the stream's authenticated session, never on anything in
//! the request, and keeps exactly the rows the store's own tenant filter would.
//!
//! Lifetime: the task starts with the first subscriber and stops once none is
//! left, rather than running for the collector's whole life, because an idle
//! console (the usual case) should not read the database every 2 s; with
//! PostgreSQL several collectors may share one server. A `watch` rather than a
//! `broadcast` channel: a slow browser needs only the latest snapshot, never a
//! backlog.
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::sync::watch;
use tokio::time::{Instant, MissedTickBehavior};

use outpost_store::agents::AgentRow;
use outpost_store::scope::Viewer;
use outpost_store::tenants::SiteRow;
use outpost_store::users::SessionKey;
use outpost_store::{AdminScope, Store, StoreError, now_ms};

use super::overview_data::Overview;

/// How often the feed reads the database while anyone is watching.
pub(crate) const FEED_INTERVAL: Duration = Duration::from_secs(2);

/// Everything one refresh read: all tenants' sites and agents, and which
/// sessions are live.
#[derive(Debug)]
pub(crate) struct Snapshot {
    /// When the refresh began. A stream may trust a session's absence from
    /// `live_sessions` only if its own session check came before this;
    /// otherwise the refresh may have read the table before that session existed.
    pub(crate) taken_at: Instant,
    pub(crate) generated_at_ms: i64,
    pub(crate) sites: Vec<SiteRow>,
    pub(crate) agents: Vec<AgentRow>,
    /// Each live session with what it may see now.
    pub(crate) live_sessions: HashMap<SessionKey, Viewer>,
    /// The all-tenants JSON, encoded once and shared by every administrator's stream.
    everything: OnceLock<Result<Arc<str>, String>>,
}

impl Snapshot {
    pub(crate) fn new(
        taken_at: Instant,
        generated_at_ms: i64,
        sites: Vec<SiteRow>,
        agents: Vec<AgentRow>,
        live_sessions: HashMap<SessionKey, Viewer>,
    ) -> Self {
        Self {
            taken_at,
            generated_at_ms,
            sites,
            agents,
            live_sessions,
            everything: OnceLock::new(),
        }
    }

    /// Reads a snapshot from the store.
    async fn read(store: &Store, admin: AdminScope) -> Result<Self, StoreError> {
        let taken_at = Instant::now();
        // The console's own read on behalf of all its viewers: streams filter
        // each snapshot by their session's scope before anything is sent.
        let everyone = Viewer::Admin(admin);
        let sites = store.sites(&everyone).await?;
        let agents = store.list_agents(&everyone).await?;
        let live_sessions = store.live_sessions().await?;
        Ok(Self::new(taken_at, now_ms(), sites, agents, live_sessions))
    }

    /// The overview as `viewer` may see it: every tenant for an MSP
    /// administrator, their tenants' sites and agents for a tenant user.
    pub(crate) fn overview_for(&self, viewer: &Viewer) -> Overview {
        match viewer {
            Viewer::Admin(_) => Overview::build(self.sites.clone(), self.agents.clone(), self.generated_at_ms),
            Viewer::Tenant(_) | Viewer::Tenants(_) => Overview::build(
                self.sites.iter().filter(|s| viewer.sees(s.tenant)).cloned().collect(),
                self.agents.iter().filter(|a| viewer.sees(a.tenant)).cloned().collect(),
                self.generated_at_ms,
            ),
        }
    }

    /// [`Self::overview_for`] as JSON.
    pub(crate) fn overview_json(&self, viewer: &Viewer) -> Result<Arc<str>, String> {
        let encode = || {
            serde_json::to_string(&self.overview_for(viewer))
                .map(Arc::from)
                .map_err(|e| e.to_string())
        };
        match viewer {
            Viewer::Admin(_) => self.everything.get_or_init(encode).clone(),
            Viewer::Tenant(_) | Viewer::Tenants(_) => encode(),
        }
    }
}

/// The latest state of the feed.
#[derive(Clone, Debug)]
pub(crate) enum Update {
    /// The first refresh has not finished.
    Pending,
    Ready(Arc<Snapshot>),
    /// The last refresh failed (and was logged); streams say their data is stale.
    Failed,
}

type Source = Arc<dyn Fn() -> BoxFuture<'static, Result<Snapshot, StoreError>> + Send + Sync>;

/// The change feed. Cheap to share; [`Feed::subscribe`] starts it.
pub(crate) struct Feed {
    source: Source,
    interval: Duration,
    /// The running feed's sender. Starting and stopping both happen under this
    /// lock, so a subscriber can never join a feed that has decided to stop.
    running: Mutex<Option<Arc<watch::Sender<Update>>>>,
    refreshes: AtomicU64,
}

impl std::fmt::Debug for Feed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Feed")
            .field("interval", &self.interval)
            .field("refreshes", &self.refreshes)
            .finish_non_exhaustive()
    }
}

impl Feed {
    /// A feed reading `store` (every tenant, as `admin`) every `interval`.
    pub(crate) fn new(store: Store, admin: AdminScope, interval: Duration) -> Self {
        Self::with_source(
            Arc::new(move || {
                let store = store.clone();
                Box::pin(async move { Snapshot::read(&store, admin).await })
            }),
            interval,
        )
    }

    fn with_source(source: Source, interval: Duration) -> Self {
        Self {
            source,
            interval,
            running: Mutex::new(None),
            refreshes: AtomicU64::new(0),
        }
    }

    /// The feed's updates, starting it if it is not running. The receiver
    /// reports the current value as changed, so a new stream sends at once.
    pub(crate) fn subscribe(self: &Arc<Self>) -> watch::Receiver<Update> {
        let mut running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        let mut rx = match running.as_ref() {
            Some(tx) => tx.subscribe(),
            None => {
                let (tx, rx) = watch::channel(Update::Pending);
                let tx = Arc::new(tx);
                *running = Some(tx.clone());
                tokio::spawn(self.clone().run(tx));
                rx
            }
        };
        rx.mark_changed();
        rx
    }

    /// Streams subscribed to the feed now (open `/events` streams).
    pub(crate) fn streams(&self) -> usize {
        self.running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .map_or(0, |tx| tx.receiver_count())
    }

    /// How many times the feed has read the database.
    #[cfg(test)]
    pub(crate) fn refreshes(&self) -> u64 {
        self.refreshes.load(Ordering::SeqCst)
    }

    /// Whether the feed task is running.
    #[cfg(test)]
    pub(crate) fn is_running(&self) -> bool {
        self.running.lock().unwrap_or_else(PoisonError::into_inner).is_some()
    }

    async fn run(self: Arc<Self>, tx: Arc<watch::Sender<Update>>) {
        let _running = RunningGuard { feed: &self, tx: &tx };
        tracing::debug!("console: live-update feed started");
        let mut tick = tokio::time::interval(self.interval);
        // A slow database should delay updates, not cause a burst of catch-up reads.
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = tx.closed() => {
                    if self.stop_if_unwatched(&tx) {
                        break;
                    }
                    continue;
                }
            }
            let update = match (self.source)().await {
                Ok(snapshot) => Update::Ready(Arc::new(snapshot)),
                Err(error) => {
                    tracing::error!(%error, "console: reading the live overview failed");
                    Update::Failed
                }
            };
            let n = self.refreshes.fetch_add(1, Ordering::SeqCst) + 1;
            tracing::trace!(
                refresh = n,
                streams = tx.receiver_count(),
                "console: live overview refreshed"
            );
            tx.send_replace(update);
        }
        tracing::debug!("console: live-update feed stopped, nobody is watching");
    }

    /// Ends the feed if nobody subscribes, deciding under the same lock as
    /// [`Self::subscribe`].
    fn stop_if_unwatched(&self, tx: &watch::Sender<Update>) -> bool {
        let mut running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        if tx.receiver_count() > 0 {
            return false;
        }
        *running = None;
        true
    }
}

/// Clears the feed's slot however its task ends, a panic included, so the
/// next subscriber starts a fresh feed rather than joining a dead one (whose
/// streams then end, and the browsers reconnect).
struct RunningGuard<'a> {
    feed: &'a Feed,
    tx: &'a Arc<watch::Sender<Update>>,
}

impl Drop for RunningGuard<'_> {
    fn drop(&mut self) {
        let mut running = self.feed.running.lock().unwrap_or_else(PoisonError::into_inner);
        if running.as_ref().is_some_and(|tx| Arc::ptr_eq(tx, self.tx)) {
            *running = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use outpost_certs::{AgentCertificate, AgentId, AgentIdentity, SiteId, TenantId};
    use outpost_store::AgentScope;

    use super::*;
    use crate::test_support::until;

    /// Short, in real time: the paused clock needs tokio's `test-util`
    /// feature, which this crate does not enable. The assertions bound reads by
    /// elapsed time, so a slow machine cannot make them fail.
    const INTERVAL: Duration = Duration::from_millis(50);

    /// A feed whose "database" answers at once with an empty snapshot.
    fn empty_feed() -> Arc<Feed> {
        Arc::new(Feed::with_source(
            Arc::new(|| Box::pin(async { Ok(Snapshot::new(Instant::now(), 0, vec![], vec![], HashMap::new())) })),
            INTERVAL,
        ))
    }

    /// A stand-in for an SSE stream: counts the snapshots it is shown.
    fn subscriber(feed: &Arc<Feed>) -> (tokio::task::JoinHandle<()>, Arc<AtomicU64>) {
        let seen = Arc::new(AtomicU64::new(0));
        let mut rx = feed.subscribe();
        let counter = seen.clone();
        let task = tokio::spawn(async move {
            while rx.changed().await.is_ok() {
                if matches!(*rx.borrow_and_update(), Update::Ready(_)) {
                    counter.fetch_add(1, Ordering::SeqCst);
                }
            }
        });
        (task, seen)
    }

    /// Reads a feed may make in `elapsed`: one at once, then one per interval.
    fn allowed_reads(elapsed: Duration) -> u64 {
        (elapsed.as_millis() / INTERVAL.as_millis()) as u64 + 1
    }

    #[tokio::test]
    async fn a_hundred_subscribers_share_one_read_per_interval() {
        let feed = empty_feed();
        let started = Instant::now();
        let subscribers: Vec<_> = (0..100).map(|_| subscriber(&feed)).collect();
        until("every subscriber has seen three snapshots", || {
            subscribers.iter().all(|(_, seen)| seen.load(Ordering::SeqCst) >= 3)
        })
        .await;
        let (reads, elapsed) = (feed.refreshes(), started.elapsed());
        assert!(
            (3..=allowed_reads(elapsed)).contains(&reads),
            "{reads} reads in {elapsed:?} for 100 subscribers: one per interval, not one per subscriber"
        );

        // Nobody watching: the feed stops reading.
        for (task, _) in subscribers {
            task.abort();
            let _ = task.await;
        }
        until("the feed stops", || !feed.is_running()).await;
        let stopped_at = feed.refreshes();
        tokio::time::sleep(INTERVAL * 5).await;
        assert_eq!(feed.refreshes(), stopped_at, "no reads without subscribers");

        // The next subscriber starts it again, with a read at once.
        let (task, seen) = subscriber(&feed);
        assert!(feed.is_running());
        until("the restarted feed delivers", || seen.load(Ordering::SeqCst) >= 1).await;
        assert!(feed.refreshes() > stopped_at);
        task.abort();
    }

    #[tokio::test]
    async fn a_late_subscriber_gets_the_current_snapshot_at_once() {
        let feed = empty_feed();
        let (first, _) = subscriber(&feed);
        until("the first read", || feed.refreshes() >= 1).await;
        let mut late = feed.subscribe();
        assert!(late.has_changed().unwrap());
        assert!(matches!(*late.borrow_and_update(), Update::Ready(_)));
        first.abort();
    }

    #[tokio::test]
    async fn a_feed_that_dies_is_replaced_by_the_next_subscriber() {
        let calls = Arc::new(AtomicU64::new(0));
        let counted = calls.clone();
        let feed = Arc::new(Feed::with_source(
            Arc::new(move || {
                let first = counted.fetch_add(1, Ordering::SeqCst) == 0;
                Box::pin(async move {
                    assert!(!first, "the first read fails hard (a deliberate test panic)");
                    Ok(Snapshot::new(Instant::now(), 0, vec![], vec![], HashMap::new()))
                })
            }),
            INTERVAL,
        ));
        let mut orphan = feed.subscribe();
        orphan.borrow_and_update();
        let ended = tokio::time::timeout(Duration::from_secs(10), orphan.changed())
            .await
            .expect("the dead feed's subscribers are told");
        assert!(ended.is_err(), "its channel is closed");
        assert!(!feed.is_running());

        let (task, seen) = subscriber(&feed);
        until("a fresh feed delivers", || seen.load(Ordering::SeqCst) >= 1).await;
        task.abort();
    }

    fn site(tenant: TenantId, name: &str) -> SiteRow {
        SiteRow {
            tenant,
            tenant_name: format!("tenant {tenant}"),
            site: SiteId::random(),
            site_name: name.into(),
        }
    }

    fn agent(site: &SiteRow, host: &str) -> AgentRow {
        AgentRow {
            online: true,
            ..AgentRow::sample(site, host)
        }
    }

    #[test]
    fn tenant_viewers_see_only_their_tenant_and_admins_see_all() {
        let (acme, zeta) = (TenantId::random(), TenantId::random());
        let (acme_hq, zeta_hq) = (site(acme, "hq"), site(zeta, "hq"));
        let snapshot = Snapshot::new(
            Instant::now(),
            7,
            vec![acme_hq.clone(), zeta_hq.clone()],
            vec![agent(&acme_hq, "acme-pc"), agent(&zeta_hq, "zeta-pc")],
            HashMap::new(),
        );
        let acme_viewer = Viewer::Tenant(
            AgentScope::from_certificate(&AgentCertificate {
                identity: AgentIdentity {
                    tenant: acme,
                    site: acme_hq.site,
                    agent: AgentId::random(),
                },
                serial: String::new(),
                not_before: 0,
                not_after: 0,
            })
            .tenant_scope(),
        );

        let json = snapshot.overview_json(&acme_viewer).unwrap();
        assert!(json.contains("acme-pc") && !json.contains("zeta-pc"), "{json}");
        assert!(!json.contains(&zeta.to_string()), "{json}");
        let seen = snapshot.overview_for(&acme_viewer);
        assert_eq!((seen.totals.tenants, seen.totals.agents), (1, 1));
        assert_eq!(seen.tenants[0].id, acme.to_string());

        let everything = snapshot.overview_json(&Viewer::Admin(AdminScope::for_tests())).unwrap();
        assert!(everything.contains("acme-pc") && everything.contains("zeta-pc"));
        assert!(
            Arc::ptr_eq(
                &everything,
                &snapshot.overview_json(&Viewer::Admin(AdminScope::for_tests())).unwrap()
            ),
            "encoded once per snapshot"
        );
    }
}
