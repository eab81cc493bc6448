//! Certificate renewal: at two thirds of the certificate's lifetime, or when the
//! collector asks, make a new key pair, send a CSR over mTLS, store the result
//! atomically and publish the new TLS configuration for the next connection.
//!
//! Certificates carry the collector's clock, so renewal is timed on the
//! collector's clock too (this host's clock corrected by the skew measured at
//! `Welcome`). Whatever the clocks say, two scheduled renewals are at least a
//! third of a certificate's lifetime apart: a badly skewed clock cannot make
//! the agent renew in a loop.
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use outpost_proto::PROTOCOL_VERSION;
use outpost_proto::agent_v1::RenewRequest;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::credentials::Credentials;
use crate::dial::{self, CollectorAddr};
use crate::signals::Signals;

/// Retry delay after a failed renewal.
const RETRY: Duration = Duration::from_secs(60);
/// Longest single sleep, so a wall-clock jump is noticed within the hour.
const MAX_SLEEP: Duration = Duration::from_secs(3600);
/// Shortest time between two scheduled renewals, whatever the clocks say.
const MIN_INTERVAL: i64 = 10;

/// The renewal task.
pub struct Renewer {
    /// Data directory holding the identity.
    pub data_dir: PathBuf,
    /// Collector address.
    pub addr: CollectorAddr,
    /// Current credentials.
    pub credentials: Credentials,
    /// Where new TLS configurations are published.
    pub tls: watch::Sender<Arc<rustls::ClientConfig>>,
    /// Wake-ups.
    pub signals: Arc<Signals>,
}

impl Renewer {
    /// Runs until `shutdown`.
    pub async fn run(mut self, shutdown: CancellationToken) {
        let mut retry_at: Option<i64> = None;
        let signals = self.signals.clone();
        let now_secs = move || signals.collector_now_secs();
        loop {
            let due = retry_at.unwrap_or_else(|| self.credentials.renew_at());
            let wait = Duration::from_secs(u64::try_from(due - now_secs()).unwrap_or(0)).min(MAX_SLEEP);
            let forced = tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(wait) => false,
                () = self.signals.renew_now.notified() => true,
            };
            if !forced && now_secs() < due {
                continue;
            }
            match self.renew_once().await {
                Ok(()) => {
                    // Normally the new certificate's own renewal point; never
                    // sooner than a third of its lifetime from now.
                    let lifetime = self.credentials.not_after - self.credentials.not_before;
                    let earliest = self.signals.collector_now_secs() + (lifetime / 3).max(MIN_INTERVAL);
                    retry_at = (self.credentials.renew_at() < earliest).then_some(earliest);
                }
                Err(error) => {
                    tracing::warn!(%error, "certificate renewal failed; will retry");
                    retry_at = Some(self.signals.collector_now_secs() + RETRY.as_secs() as i64);
                }
            }
        }
    }

    async fn renew_once(&mut self) -> Result<(), String> {
        let hostname = hostname::get()
            .map(|h| h.to_string_lossy().into_owned())
            .unwrap_or_default();
        let request = outpost_certs::keys::generate_key_and_csr(&hostname).map_err(|e| e.to_string())?;
        let tls = self.tls.borrow().clone();
        let mut client = dial::client(&self.addr, tls).await.map_err(|e| dial::chain(&e))?;
        let response = client
            .renew(RenewRequest {
                protocol_version: PROTOCOL_VERSION,
                csr_der: request.csr_der,
            })
            .await
            .map_err(|s| format!("{:?}: {}", s.code(), s.message()))?
            .into_inner();
        let current = self.credentials.identity;
        let creds = Credentials::store(
            &self.data_dir,
            &request.key_pem,
            &response.certificate_chain_der,
            None,
            |id| {
                (*id == current)
                    .then_some(())
                    .ok_or_else(|| format!("the renewed certificate names {id}, not {current}"))
            },
        )
        .map_err(|e| e.to_string())?;
        let config = creds.client_config().map_err(|e| e.to_string())?;
        self.tls.send_replace(config);
        tracing::info!(not_after = creds.not_after, "certificate renewed");
        self.signals.set_cert_not_after(creds.not_after);
        self.credentials = creds;
        Ok(())
    }
}
