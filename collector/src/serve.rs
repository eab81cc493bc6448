//! `outpost-collector serve`: the agent port and the console, until shutdown.
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use outpost_certs::RevokedAgents;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::agent_port::{self, AgentPortService};
use crate::console::{self, ConsoleState};
use crate::data_dir::DataDir;
use crate::store::Store;

/// How often the revocation list is reloaded from the database, so a
/// `agent revoke` from another process (or another collector sharing
/// PostgreSQL) takes effect.
const REVOCATION_REFRESH: Duration = Duration::from_secs(2);
/// How long open connections get to close after shutdown is requested.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// Settings for [`serve`].
#[derive(Clone, Debug)]
pub struct ServeOptions {
    /// The data directory.
    pub data_dir: DataDir,
    /// PostgreSQL URL; SQLite in the data directory when `None`.
    pub database_url: Option<String>,
    /// Agent port address.
    pub agent_addr: SocketAddr,
    /// Console address.
    pub console_addr: SocketAddr,
    /// Lifetime of agent certificates.
    pub agent_cert_lifetime: Duration,
    /// Mark console cookies `Secure` (on unless the console is plain HTTP on a non-loopback address).
    pub secure_cookies: bool,
}

/// Where [`serve`] ended up listening.
#[derive(Clone, Copy, Debug)]
pub struct Bound {
    /// Agent port.
    pub agent: SocketAddr,
    /// Console.
    pub console: SocketAddr,
}

/// Runs the collector until `shutdown` is cancelled. `ready` receives the bound
/// addresses once both listeners are up.
pub async fn serve(
    opts: ServeOptions,
    shutdown: CancellationToken,
    ready: Option<tokio::sync::oneshot::Sender<Bound>>,
) -> Result<()> {
    agent_port::raise_open_file_limit();
    let ca = Arc::new(opts.data_dir.load_ca()?);
    let (chain, key) = opts.data_dir.load_server_credentials()?;
    let store = Store::open(opts.data_dir.root(), opts.database_url.as_deref())
        .await
        .context("opening the database")?;
    tracing::info!(engine = store.engine(), "database ready");

    let revoked = Arc::new(RevokedAgents::default());
    revoked.replace(store.revoked_agents().await?);
    let tls = Arc::new(outpost_certs::tls::agent_port_server_config(
        ca.cert_der(),
        chain,
        key,
        revoked.clone(),
    )?);

    let agent_listener = TcpListener::bind(opts.agent_addr)
        .await
        .with_context(|| format!("binding the agent port {}", opts.agent_addr))?;
    let console_listener = TcpListener::bind(opts.console_addr)
        .await
        .with_context(|| format!("binding the console {}", opts.console_addr))?;
    let bound = Bound {
        agent: agent_listener.local_addr()?,
        console: console_listener.local_addr()?,
    };
    tracing::info!(addr = %bound.agent, "agent port listening on {}", bound.agent);
    tracing::info!(url = %format!("http://{}/", bound.console), "console listening on http://{}/", bound.console);
    tracing::info!(fingerprint = %ca.fingerprint(), "collector CA fingerprint");
    if !bound.console.ip().is_loopback() {
        tracing::warn!(
            addr = %bound.console,
            "the console serves plain HTTP on a non-loopback address; put a TLS-terminating proxy in front \
             (session cookies are Secure and browsers only send them over HTTPS or to localhost)"
        );
    }

    let service = AgentPortService::new(
        store.clone(),
        ca.clone(),
        revoked.clone(),
        opts.agent_cert_lifetime,
        shutdown.clone(),
    );
    let refresher = {
        let (store, revoked, shutdown) = (store.clone(), revoked.clone(), shutdown.clone());
        let connections = service.connections().clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(REVOCATION_REFRESH);
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    _ = tick.tick() => match store.revoked_agents().await {
                        Ok(set) => {
                            revoked.replace(set);
                            // Revocation ends connections, not only streams.
                            connections.close_revoked(&revoked);
                        }
                        Err(error) => tracing::warn!(%error, "reloading the revocation list failed"),
                    },
                }
            }
        })
    };

    let agent_task = tokio::spawn(agent_port::serve(agent_listener, tls, service, shutdown.clone()));
    let app = console::router(ConsoleState::new(store.clone(), opts.secure_cookies));
    let console_shutdown = shutdown.clone();
    let console_task = tokio::spawn(async move {
        axum::serve(
            console_listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(console_shutdown.cancelled_owned())
        .await
    });
    if let Some(tx) = ready {
        let _ = tx.send(bound);
    }

    let mut agent_task = Some(agent_task);
    let mut console_task = Some(console_task);
    // Until shutdown is requested or one of the servers fails. (Both handles are
    // present until their own branch completes, which ends the select.)
    let result = tokio::select! {
        () = shutdown.cancelled() => Ok(()),
        r = async { agent_task.as_mut().expect("present").await } => {
            agent_task = None;
            r.context("agent port task").and_then(|r| r.context("agent port"))
        }
        r = async { console_task.as_mut().expect("present").await } => {
            console_task = None;
            r.context("console task").and_then(|r| r.context("console"))
        }
    };
    shutdown.cancel();
    // Agent streams end on cancellation; event streams in browsers do not, so
    // whatever is still open after the grace period is cut.
    let deadline = tokio::time::Instant::now() + SHUTDOWN_GRACE;
    finish(agent_task, deadline).await;
    finish(console_task, deadline).await;
    let _ = refresher.await;
    store.close().await;
    tracing::info!("collector stopped");
    result
}

/// Waits for a server task until `deadline`, then aborts it.
async fn finish<T>(task: Option<tokio::task::JoinHandle<T>>, deadline: tokio::time::Instant) {
    let Some(task) = task else { return };
    let abort = task.abort_handle();
    if tokio::time::timeout_at(deadline, task).await.is_err() {
        abort.abort();
    }
}
