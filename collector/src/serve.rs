//! `outpost-collector serve`: the agent port and the console, until shutdown.
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use outpost_certs::RevokedAgents;
use outpost_console::ConsoleState;
use outpost_store::Store;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::console_port::{self, Limits, Transport, TrustedProxies};
use crate::data_dir::DataDir;
use outpost_agent_port::{self as agent_port, AgentPortService};

/// How often the revocation list is reloaded from the database, so a
/// `agent revoke` from another process (or another collector sharing
/// PostgreSQL) takes effect.
const REVOCATION_REFRESH: Duration = Duration::from_secs(2);
/// A console request's body (a form of a few hundred bytes) must arrive within
/// this time of its head, so a client trickling it cannot hold a connection.
const CONSOLE_BODY_DEADLINE: Duration = Duration::from_secs(30);
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
    /// Mark console cookies `Secure`. Browsers send those over HTTPS and to
    /// loopback addresses, the only places the console is served.
    pub secure_cookies: bool,
    /// How the console port speaks.
    pub console_transport: ConsoleTransport,
    /// Peers whose `X-Forwarded-For` names the console's client.
    pub trusted_proxies: Vec<IpAddr>,
    /// How long metric samples and their rollups are kept.
    pub metrics_retention: outpost_store::metrics::Retention,
    /// When set, `/metrics` requires `Authorization: Bearer` with it.
    pub metrics_token: Option<String>,
    /// Where tunnels may go, how many, for how long.
    pub tunnel_policy: outpost_agent_port::tunnels::TunnelPolicy,
}

/// The console port's transport and certificate.
#[derive(Clone, Debug, Default)]
pub enum ConsoleTransport {
    /// HTTPS with the agent port's server certificate, issued by the
    /// collector CA and renewed with it (`cert renew`).
    #[default]
    CollectorCertificate,
    /// HTTPS with an operator's PEM files, reloaded when they change.
    Files {
        /// Certificate chain, leaf first.
        cert: PathBuf,
        /// Private key.
        key: PathBuf,
    },
    /// Plain HTTP, on a loopback address only (behind a reverse proxy).
    PlainHttp,
}

/// Refuses plain HTTP on anything but a loopback address: session cookies and
/// passwords would cross the network in the clear.
pub fn check_console_transport(transport: &ConsoleTransport, addr: SocketAddr) -> Result<(), String> {
    if matches!(transport, ConsoleTransport::PlainHttp) && !addr.ip().is_loopback() {
        return Err(format!(
            "--console-plain-http serves the console without TLS, so it may only listen on a loopback address \
             (127.0.0.1, ::1) behind a reverse proxy on the same host; {addr} is not one. \
             Drop --console-plain-http to serve HTTPS on {addr}."
        ));
    }
    Ok(())
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
    check_console_transport(&opts.console_transport, opts.console_addr).map_err(anyhow::Error::msg)?;
    let open_files = agent_port::raise_open_file_limit();
    let ca = Arc::new(opts.data_dir.load_ca()?);
    let (chain, key) = opts.data_dir.load_server_credentials()?;
    let server_cert = Arc::new(
        outpost_certs::tls::ServerCertificate::new(ca.cert_der(), chain, key)
            .context("checking the agent-port server certificate")?,
    );
    let (store, admin) = Store::open_as_operator(opts.data_dir.root(), opts.database_url.as_deref())
        .await
        .context("opening the database")?;
    tracing::info!(engine = store.engine(), "database ready");
    if let Some(warning) = opts
        .database_url
        .as_deref()
        .and_then(outpost_store::postgres_tls_warning)
    {
        tracing::warn!("{warning}");
    }

    let vault = Arc::new(opts.data_dir.load_vault()?);
    anyhow::ensure!(
        store.check_vault_key(&admin, &vault.key_check()).await?,
        "the vault key {} is not the key this database's device passwords were sealed with; \
         restore the original key file (or point OUTPOST_VAULT_KEY_FILE at it)",
        opts.data_dir.vault_path().display()
    );

    let revoked = Arc::new(RevokedAgents::default());
    revoked.replace(store.revoked_agents().await?);
    let tls = Arc::new(outpost_certs::tls::agent_port_server_config(
        ca.cert_der(),
        server_cert.clone(),
        revoked.clone(),
    )?);

    let (transport, console_cert) = console_transport(&opts.console_transport, &server_cert)?;

    let agent_listener = bind(opts.agent_addr)
        .await
        .with_context(|| format!("binding the agent port {}", opts.agent_addr))?;
    let console_listener = bind(opts.console_addr)
        .await
        .with_context(|| format!("binding the console {}", opts.console_addr))?;
    let bound = Bound {
        agent: agent_listener.local_addr()?,
        console: console_listener.local_addr()?,
    };
    tracing::info!(addr = %bound.agent, "agent port listening on {}", bound.agent);
    let scheme = match transport {
        Transport::Tls(_) => "https",
        Transport::PlainHttp => "http",
    };
    tracing::info!(
        url = %format!("{scheme}://{}/", bound.console),
        "console listening on {scheme}://{}/",
        bound.console
    );
    tracing::info!(fingerprint = %ca.fingerprint(), "collector CA fingerprint");

    let metrics = Arc::new(outpost_console::Metrics::new(opts.metrics_token.clone()));
    let service = AgentPortService::new(
        store.clone(),
        ca.clone(),
        revoked.clone(),
        opts.agent_cert_lifetime,
        shutdown.clone(),
        vault.clone(),
    )
    .with_metrics(metrics.clone())
    .with_tunnel_policy(opts.tunnel_policy.clone());
    let rollups = tokio::spawn(roll_up_metrics(
        store.clone(),
        opts.metrics_retention.clone(),
        shutdown.clone(),
    ));
    let refresher = {
        let (store, service, shutdown) = (store.clone(), service.clone(), shutdown.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(REVOCATION_REFRESH);
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    _ = tick.tick() => match store.revoked_agents().await {
                        Ok(set) => service.apply_revocations(set),
                        Err(error) => tracing::warn!(%error, "reloading the revocation list failed"),
                    },
                }
            }
        })
    };

    let cert_watcher = tokio::spawn(watch_server_certificate(
        opts.data_dir.clone(),
        server_cert,
        shutdown.clone(),
    ));
    let traffic = Arc::new(service.control());
    // `/readyz` answers 503 once the agent port stops serving.
    let agent_port_up = outpost_console::AgentPortUp::default();
    agent_port_up.set(true);
    let agent_task = tokio::spawn({
        let (up, serving) = (
            agent_port_up.clone(),
            agent_port::serve(agent_listener, tls, service, shutdown.clone()),
        );
        async move {
            let result = serving.await;
            up.set(false);
            result
        }
    });
    let console_state = ConsoleState::new(store.clone(), admin, vault.clone(), opts.secure_cookies)
        .with_agent_control(traffic.clone())
        .with_operability(metrics, agent_port_up)
        .with_ca_fingerprint(ca.fingerprint());
    outpost_console::spawn_maintenance(&console_state, shutdown.clone());
    let api = outpost_api::routes(
        outpost_api::ApiState::new(store.clone(), ca.fingerprint(), vault.clone(), console_state.sign_in())
            .with_control(traffic),
    )
    .into_axum_router();
    let web = outpost_console::router(console_state).layer(console_port::body_deadline::layer(CONSOLE_BODY_DEADLINE));
    let app = console_port::split::ByContentType::new(api, web).into_router();
    let console_cert_watcher = console_cert.map(|cert| tokio::spawn(cert.watch(shutdown.clone())));
    let console_task = tokio::spawn(console_port::serve(
        console_listener,
        transport,
        TrustedProxies::new(&opts.trusted_proxies),
        Limits::for_open_files(open_files),
        app,
        shutdown.clone(),
    ));
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
            r.context("console task")
        }
    };
    shutdown.cancel();
    // Agent streams end on cancellation; event streams in browsers do not, so
    // whatever is still open after the grace period is cut.
    let deadline = tokio::time::Instant::now() + SHUTDOWN_GRACE;
    finish(agent_task, deadline).await;
    finish(console_task, deadline).await;
    let _ = refresher.await;
    let _ = rollups.await;
    let _ = cert_watcher.await;
    if let Some(watcher) = console_cert_watcher {
        let _ = watcher.await;
    }
    store.close().await;
    tracing::info!("collector stopped");
    result
}

/// The console port's transport, and the operator's certificate files to
/// watch if it serves those.
fn console_transport(
    wanted: &ConsoleTransport,
    collector_cert: &Arc<outpost_certs::tls::ServerCertificate>,
) -> Result<(Transport, Option<Arc<console_port::tls::FileCertificate>>)> {
    let (resolver, files): (Arc<dyn rustls::server::ResolvesServerCert>, _) = match wanted {
        ConsoleTransport::PlainHttp => return Ok((Transport::PlainHttp, None)),
        ConsoleTransport::CollectorCertificate => (collector_cert.clone(), None),
        ConsoleTransport::Files { cert, key } => {
            let files = Arc::new(
                console_port::tls::FileCertificate::load(cert, key).context("loading the console certificate")?,
            );
            (files.clone(), Some(files))
        }
    };
    let config = console_port::tls::server_config(resolver).context("configuring the console's TLS")?;
    Ok((Transport::Tls(Arc::new(config)), files))
}

/// Connections the kernel completes and queues for `accept`. A flood of bare
/// TCP connections must not overflow the queue: a connection dropped there
/// looks established to its client without ever reaching us. (The kernel caps
/// this at `net.core.somaxconn`.)
const LISTEN_BACKLOG: u32 = 4096;

/// Binds a listener with [`LISTEN_BACKLOG`] (tokio's `bind` uses 1024).
async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    // As tokio's own bind does: a restarted collector can bind again at once.
    #[cfg(unix)]
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Waits for a server task until `deadline`, then aborts it.
async fn finish<T>(task: Option<tokio::task::JoinHandle<T>>, deadline: tokio::time::Instant) {
    let Some(task) = task else { return };
    let abort = task.abort_handle();
    if tokio::time::timeout_at(deadline, task).await.is_err() {
        abort.abort();
    }
}

/// How often the server certificate file is checked for a renewal.
const CERT_RELOAD_CHECK: Duration = Duration::from_secs(2);
/// How often a certificate near its end is warned about again.
const CERT_WARNING_EVERY: Duration = Duration::from_secs(24 * 3600);

/// Serves a renewed agent-port certificate (`cert renew`) without a restart,
/// and warns from 30 days before the served one ends.
async fn watch_server_certificate(
    dir: DataDir,
    cert: Arc<outpost_certs::tls::ServerCertificate>,
    shutdown: CancellationToken,
) {
    let stamp = |path: &std::path::Path| std::fs::metadata(path).and_then(|m| m.modified()).ok();
    let file = dir.server_file();
    let mut seen = stamp(&file);
    let mut warned: Option<tokio::time::Instant> = None;
    let mut tick = tokio::time::interval(CERT_RELOAD_CHECK);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let now = stamp(&file);
        if now.is_some() && now != seen {
            seen = now;
            match dir
                .load_server_credentials()
                .map_err(|e| format!("{e:#}"))
                .and_then(|(chain, key)| cert.replace(chain, key).map_err(|e| e.to_string()))
            {
                Ok(not_after) => {
                    tracing::info!(file = %file.display(), not_after, "agent-port certificate reloaded");
                    warned = None;
                }
                Err(error) => tracing::error!(
                    file = %file.display(),
                    %error,
                    "the renewed agent-port certificate is not usable; still serving the previous one"
                ),
            }
        }
        let not_after = cert.not_after();
        if crate::data_dir::expires_soon(not_after) && warned.is_none_or(|at| at.elapsed() >= CERT_WARNING_EVERY) {
            tracing::warn!(not_after, "{}", crate::data_dir::expiry_warning(dir.root(), not_after));
            warned = Some(tokio::time::Instant::now());
        }
    }
}

/// How often metric rollups and retention run.
const ROLLUP_INTERVAL: Duration = Duration::from_secs(60);

/// Rolls raw samples up into 5-minute and 1-hour summaries and expires old
/// ones, every minute; a pass that had more to do than its bound continues
/// at once.
async fn roll_up_metrics(store: Store, retention: outpost_store::metrics::Retention, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(ROLLUP_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        loop {
            match store.roll_up(outpost_store::now_ms(), &retention).await {
                Ok(stats) if stats.more && !shutdown.is_cancelled() => continue,
                Ok(_) => break,
                Err(error) => {
                    tracing::warn!(%error, "metric rollup failed; retrying in a minute");
                    break;
                }
            }
        }
    }
}
