//! The agent as a Windows service: `outpost-agent service`, the command line
//! the service control manager starts (registered by the MSI as
//! `outpost-agent`, automatic start, LocalSystem).
//!
//! The control manager calls back into [`service_main`] on a thread of its
//! own; the data directory reaches it through [`DATA_DIR`] because that
//! callback takes no state. Stop and shutdown requests cancel the same token
//! a console run cancels on Ctrl-C, so both paths shut the agent down alike.
//!
//! Until the agent is enrolled (`agent.toml` exists) the service waits,
//! so installing without enrollment properties leaves a running service that
//! starts the agent once `outpost-agent enroll` has run.
//!
//! A service has no console: logs go to `DATA_DIR\outpost-agent.log`
//! (moved to `outpost-agent.log.old` at start once it passes
//! [`LOG_ROTATE_BYTES`]).
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock, mpsc};
use std::time::Duration;

use anyhow::Context as _;
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;
use windows_service::service::{
    ServiceControl, ServiceControlAccept, ServiceExitCode, ServiceState, ServiceStatus, ServiceType,
};
use windows_service::service_control_handler::{self, ServiceControlHandlerResult, ServiceStatusHandle};
use windows_service::{define_windows_service, service_dispatcher};

/// The service's name, as the MSI registers it (`sc query outpost-agent`).
pub(crate) const SERVICE_NAME: &str = "outpost-agent";

/// Log file size past which the previous log is set aside at start.
const LOG_ROTATE_BYTES: u64 = 16 * 1024 * 1024;

/// How long the control manager is told a stop may take (the outbox is
/// flushed and the uplink closed).
const STOP_WAIT_HINT: Duration = Duration::from_secs(20);

/// How often an agent that is not enrolled yet looks for its configuration.
const ENROLLMENT_POLL: Duration = Duration::from_secs(5);

/// Exit code reported to the control manager when the agent fails.
const EXIT_FAILED: u32 = 1;

static DATA_DIR: OnceLock<PathBuf> = OnceLock::new();

define_windows_service!(ffi_service_main, service_main);

/// Hands this process to the service control manager; returns when the
/// service has stopped. Fails at once when the process was not started by
/// the control manager (e.g. `outpost-agent service` typed in a console).
pub(crate) fn run(data_dir: PathBuf) -> anyhow::Result<()> {
    // Set once, before the dispatcher starts: a second set cannot happen.
    let _ = DATA_DIR.set(data_dir);
    service_dispatcher::start(SERVICE_NAME, ffi_service_main).context(
        "cannot reach the Windows service control manager: `outpost-agent service` is what the \
         outpost-agent service runs; in a console use `outpost-agent run`",
    )
}

fn service_main(_arguments: Vec<OsString>) {
    let Some(data_dir) = DATA_DIR.get().cloned() else {
        return;
    };
    init_logging(&data_dir);
    if let Err(error) = run_service(&data_dir) {
        tracing::error!(error = format!("{error:#}"), "the service failed");
    }
}

/// What the service thread waits for.
enum Event {
    StopRequested,
    Finished(anyhow::Result<()>),
}

fn run_service(data_dir: &Path) -> anyhow::Result<()> {
    let shutdown = CancellationToken::new();
    let (events, next_event) = mpsc::channel();
    let on_control = (shutdown.clone(), events.clone());
    // The handler runs on the dispatcher's thread and must answer at once.
    let handler = move |control| match control {
        ServiceControl::Stop | ServiceControl::Shutdown => {
            on_control.0.cancel();
            let _ = on_control.1.send(Event::StopRequested);
            ServiceControlHandlerResult::NoError
        }
        ServiceControl::Interrogate => ServiceControlHandlerResult::NoError,
        _ => ServiceControlHandlerResult::NotImplemented,
    };
    let status =
        service_control_handler::register(SERVICE_NAME, handler).context("registering the service control handler")?;
    report(&status, ServiceState::Running, ServiceExitCode::NO_ERROR);
    tracing::info!(data_dir = %data_dir.display(), "service started");

    // The agent runs on a thread of its own so this one, which holds the
    // status handle, can report a stop as pending while the agent winds down.
    let agent = {
        let data_dir = data_dir.to_owned();
        std::thread::Builder::new()
            .name("agent".into())
            .spawn(move || {
                let result = tokio::runtime::Builder::new_multi_thread()
                    .enable_all()
                    .build()
                    .context("starting the async runtime")
                    .and_then(|runtime| {
                        runtime.block_on(async {
                            if !wait_for_enrollment(&data_dir, &shutdown).await {
                                return Ok(());
                            }
                            outpost_agent::run(&data_dir, shutdown).await
                        })
                    });
                let _ = events.send(Event::Finished(result));
            })
            .context("starting the agent thread")?
    };
    let result = loop {
        match next_event.recv() {
            Ok(Event::StopRequested) => {
                tracing::info!("stop requested by the service control manager");
                report(&status, ServiceState::StopPending, ServiceExitCode::NO_ERROR);
            }
            Ok(Event::Finished(result)) => break result,
            // Both senders gone without a result: the agent thread panicked.
            Err(mpsc::RecvError) => break Err(anyhow::anyhow!("the agent thread ended without a result")),
        }
    };
    let _ = agent.join();
    match &result {
        Ok(()) => {
            tracing::info!("service stopped");
            report(&status, ServiceState::Stopped, ServiceExitCode::NO_ERROR);
        }
        Err(error) => {
            tracing::error!(error = format!("{error:#}"), "the agent stopped with an error");
            report(
                &status,
                ServiceState::Stopped,
                ServiceExitCode::ServiceSpecific(EXIT_FAILED),
            );
        }
    }
    result
}

/// Waits until `enroll` has written the configuration: the MSI installs and
/// starts the service whether or not it was given enrollment properties, and
/// an agent enrolled by hand later starts without a restart. False when a
/// stop came first.
async fn wait_for_enrollment(data_dir: &Path, shutdown: &CancellationToken) -> bool {
    let config = data_dir.join(outpost_agent::config::CONFIG_FILE);
    let mut said = false;
    while !config.exists() {
        if !said {
            tracing::warn!(
                config = %config.display(),
                "not enrolled yet: waiting for `outpost-agent enroll --collector HOST:PORT --token-file FILE` (as an administrator)"
            );
            said = true;
        }
        tokio::select! {
            () = shutdown.cancelled() => return false,
            () = tokio::time::sleep(ENROLLMENT_POLL) => {}
        }
    }
    if said {
        tracing::info!("enrolled: starting");
    }
    true
}

/// Tells the control manager the service's state.
fn report(handle: &ServiceStatusHandle, state: ServiceState, exit_code: ServiceExitCode) {
    let controls_accepted = match state {
        ServiceState::Running => ServiceControlAccept::STOP | ServiceControlAccept::SHUTDOWN,
        _ => ServiceControlAccept::empty(),
    };
    let wait_hint = match state {
        ServiceState::StopPending => STOP_WAIT_HINT,
        _ => Duration::ZERO,
    };
    let status = ServiceStatus {
        service_type: ServiceType::OWN_PROCESS,
        current_state: state,
        controls_accepted,
        exit_code,
        checkpoint: 0,
        wait_hint,
        process_id: None,
    };
    if let Err(error) = handle.set_service_status(status) {
        tracing::warn!(%error, ?state, "cannot report the service state");
    }
}

/// Logs to `DATA_DIR\outpost-agent.log`; without a writable file, nowhere
/// (a service has no console to fall back on).
fn init_logging(data_dir: &Path) {
    let path = data_dir.join("outpost-agent.log");
    if std::fs::metadata(&path).is_ok_and(|m| m.len() > LOG_ROTATE_BYTES) {
        let _ = std::fs::rename(&path, data_dir.join("outpost-agent.log.old"));
    }
    let file = std::fs::create_dir_all(data_dir)
        .and_then(|()| std::fs::OpenOptions::new().create(true).append(true).open(&path));
    let Ok(file) = file else {
        return;
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(Mutex::new(file))
        .with_ansi(false)
        .init();
}
