//! Live traffic: while someone watches a device in the console, its interface
//! rates stream every second (`/interface/monitor-traffic`, tagged on the
//! device's own session) straight to the uplink, bypassing the outbox — a
//! rate from ten seconds ago is worth nothing, so when the uplink is busy or
//! down, samples are dropped rather than queued.
use std::collections::BTreeMap;

use outpost_proto::agent_v1::{LiveInterfaceRate, LiveTraffic};
use outpost_routeros::Client;
use outpost_routeros::command::monitor_traffic;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Samples waiting for the uplink; beyond this they are dropped.
pub const QUEUE: usize = 256;

/// Where live samples go (the uplink).
pub type LiveSender = mpsc::Sender<LiveTraffic>;

/// Start (with these interfaces; empty: all running ones) or stop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LiveRequest {
    /// Stream these interfaces.
    Start(Vec<String>),
    /// Stop streaming.
    Stop,
}

/// One device's live stream, if any.
#[derive(Debug, Default)]
pub struct Live {
    wanted: Option<Vec<String>>,
    running: Option<CancellationToken>,
    /// Interfaces of the last poll, used when the request names none.
    pub(super) known_interfaces: Vec<String>,
}

impl Live {
    /// Applies a request from the collector.
    pub async fn request(&mut self, request: LiveRequest, client: Option<&Client>, device_id: &str, out: &LiveSender) {
        self.stop();
        self.wanted = match request {
            LiveRequest::Start(interfaces) => Some(interfaces),
            LiveRequest::Stop => None,
        };
        self.resume(client, device_id, out).await;
    }

    /// (Re)starts the stream if one is wanted and none runs, e.g. after the
    /// session was reopened.
    pub async fn resume(&mut self, client: Option<&Client>, device_id: &str, out: &LiveSender) {
        if self.running.as_ref().is_some_and(|t| !t.is_cancelled()) {
            return;
        }
        let (Some(wanted), Some(client)) = (&self.wanted, client) else {
            return;
        };
        let interfaces = if wanted.is_empty() {
            self.known_interfaces.clone()
        } else {
            wanted.clone()
        };
        if interfaces.is_empty() {
            return;
        }
        let names: Vec<&str> = interfaces.iter().map(String::as_str).collect();
        let mut stream = match monitor_traffic::start(client, &names).await {
            Ok(s) => s,
            Err(error) => {
                tracing::warn!(device = %device_id, %error, "live traffic could not start");
                return;
            }
        };
        let token = CancellationToken::new();
        self.running = Some(token.clone());
        tracing::info!(device = %device_id, interfaces = interfaces.len(), "live traffic started");
        let (device_id, out, expected) = (device_id.to_owned(), out.clone(), interfaces.len());
        tokio::spawn(async move {
            // RouterOS sends one row per interface per second; a round is
            // complete when every interface has reported (or one repeats).
            let mut round: BTreeMap<String, (f64, f64)> = BTreeMap::new();
            loop {
                let row = tokio::select! {
                    () = token.cancelled() => break,
                    row = stream.next() => row,
                };
                let sample = match row {
                    Some(Ok(attrs)) => monitor_traffic::parse(&attrs),
                    Some(Err(error)) => {
                        tracing::debug!(device = %device_id, %error, "live traffic stream ended");
                        break;
                    }
                    None => break,
                };
                let Some(name) = sample.name else { continue };
                if round.contains_key(&name) {
                    // An interface stopped reporting: send the round as it is.
                    emit(&mut round, &device_id, &out);
                }
                round.insert(
                    name,
                    (
                        sample.rx_bits_per_second.unwrap_or(0) as f64,
                        sample.tx_bits_per_second.unwrap_or(0) as f64,
                    ),
                );
                if round.len() >= expected {
                    emit(&mut round, &device_id, &out);
                }
            }
            // Dropping the stream cancels the command on the router.
            token.cancel();
            tracing::info!(device = %device_id, "live traffic stopped");
        });
    }

    /// Stops the stream (the request stays, for [`Live::resume`]).
    pub fn stop(&mut self) {
        if let Some(token) = self.running.take() {
            token.cancel();
        }
    }
}

/// Sends one round of rates, dropping it if the uplink is busy.
fn emit(round: &mut BTreeMap<String, (f64, f64)>, device_id: &str, out: &LiveSender) {
    let message = LiveTraffic {
        device_id: device_id.to_owned(),
        at_ms: crate::now_ms(),
        interfaces: std::mem::take(round)
            .into_iter()
            .map(|(name, (rx, tx))| LiveInterfaceRate {
                name,
                rx_bits_per_sec: rx,
                tx_bits_per_sec: tx,
            })
            .collect(),
    };
    if out.try_send(message).is_err() {
        tracing::trace!(device = %device_id, "uplink busy; live sample dropped");
    }
}
