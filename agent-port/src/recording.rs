//! Records a terminal session as asciicast v2 into the store: a header with
//! the size and start time, then `[seconds, "o" | "i" | "r", data]` events.
//! Events are batched (whatever queued while the last write ran goes in the
//! next one), so a fast typist costs a write per batch, not per key.
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use outpost_store::devices::DeviceId;
use outpost_store::{Store, TenantScope};
use tokio::sync::mpsc;

/// Events queued before the recorder drops further ones (and says so once).
const QUEUE: usize = 1024;

/// One event: its code (`o`, `i`, `r`) and data.
pub(super) struct Event(pub(super) &'static str, pub(super) String);

/// The sending side; dropping it ends the recording.
#[derive(Clone)]
pub(super) struct Recorder {
    events: mpsc::Sender<(f64, Event)>,
    start: Instant,
}

impl Recorder {
    /// Starts a recording; `None` (logged) if the store refuses it, so a
    /// session never fails for want of its recording.
    pub(super) async fn start(
        store: Store,
        scope: TenantScope,
        device: DeviceId,
        user: &str,
        tunnel_id: &str,
        cols: u32,
        rows: u32,
    ) -> Option<Self> {
        let timestamp = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let header = serde_json::json!({
            "version": 2,
            "width": cols,
            "height": rows,
            "timestamp": timestamp,
            "env": {"TERM": "xterm"},
        })
        .to_string();
        let id = match store.start_recording(&scope, device, user, tunnel_id, &header).await {
            Ok(id) => id,
            Err(error) => {
                tracing::error!(%device, %error, "starting a terminal recording failed");
                return None;
            }
        };
        let (events, mut queue) = mpsc::channel::<(f64, Event)>(QUEUE);
        tokio::spawn(async move {
            while let Some(first) = queue.recv().await {
                let mut lines = line(first);
                while let Ok(next) = queue.try_recv() {
                    lines.push_str(&line(next));
                }
                if let Err(error) = store.append_recording(&scope, &id, &lines).await {
                    tracing::error!(recording = %id, %error, "writing a terminal recording failed");
                }
            }
            if let Err(error) = store.finish_recording(&scope, &id).await {
                tracing::error!(recording = %id, %error, "closing a terminal recording failed");
            }
        });
        Some(Self {
            events,
            start: Instant::now(),
        })
    }

    pub(super) fn record(&self, event: Event) {
        let at = self.start.elapsed().as_secs_f64();
        if self.events.try_send((at, event)).is_err() {
            tracing::warn!("a terminal recording fell behind; an event was left out");
        }
    }
}

fn line((at, Event(code, data)): (f64, Event)) -> String {
    let mut s = serde_json::json!([(at * 1000.0).round() / 1000.0, code, data]).to_string();
    s.push('\n');
    s
}

/// Decodes output bytes as UTF-8 across chunk boundaries: an incomplete
/// character at the end waits for the next chunk; invalid bytes become U+FFFD.
#[derive(Default)]
pub(super) struct Utf8Carry(Vec<u8>);

impl Utf8Carry {
    pub(super) fn push(&mut self, bytes: &[u8]) -> String {
        self.0.extend_from_slice(bytes);
        let keep = match std::str::from_utf8(&self.0) {
            Ok(_) => 0,
            Err(e) if e.error_len().is_none() => self.0.len() - e.valid_up_to(),
            Err(_) => 0,
        };
        let tail = self.0.split_off(self.0.len() - keep);
        let text = String::from_utf8_lossy(&self.0).into_owned();
        self.0 = tail;
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_split_across_chunks_is_kept_whole() {
        let mut c = Utf8Carry::default();
        let bytes = "né".as_bytes();
        assert_eq!(c.push(&bytes[..2]), "n");
        assert_eq!(c.push(&bytes[2..]), "é");
        assert_eq!(c.push(b"\xff!"), "\u{fffd}!");
    }

    #[test]
    fn events_are_asciicast_lines() {
        assert_eq!(line((1.23456, Event("o", "a\"b".into()))), "[1.235,\"o\",\"a\\\"b\"]\n");
    }
}
