//! Records a terminal session as asciicast v2 into the store: a header with
//! the size and start time, then `[seconds, "o" | "i" | "r", data]` events.
//! Events are batched (whatever queued while the last write ran goes in the
//! next one), so a fast typist costs a write per batch, not per key.
//!
//! No part of a session goes unrecorded: events wait for the writer rather
//! than being dropped, a session whose recording cannot start does not
//! start, and when the recording reaches its cap or cannot be written the
//! session is ended ([`Recorder::stopped`]) with the reason.
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use outpost_store::devices::DeviceId;
use outpost_store::{Store, StoreError, TenantScope};
use tokio::sync::{mpsc, watch};

/// Events queued before the session waits for the writer.
const QUEUE: usize = 1024;
/// Largest recording (header and events, as stored): 16 MiB holds hours of
/// ordinary use; a session that prints more (a log followed for a day) is
/// ended rather than kept unrecorded or left to fill the database.
pub(crate) const MAX_RECORDING_BYTES: i64 = 16 * 1024 * 1024;

/// One event: its code (`o`, `i`, `r`) and data.
pub(super) struct Event(pub(super) &'static str, pub(super) String);

/// The sending side; dropping every clone ends the recording.
#[derive(Clone)]
pub(super) struct Recorder {
    events: mpsc::Sender<(f64, Event)>,
    start: Instant,
    stopped: watch::Receiver<Option<String>>,
}

impl Recorder {
    /// Starts a recording capped at `max_bytes`, or says why it cannot.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn start(
        store: Store,
        scope: TenantScope,
        device: DeviceId,
        user: &str,
        tunnel_id: &str,
        (cols, rows): (u32, u32),
        max_bytes: i64,
    ) -> Result<Self, StoreError> {
        let timestamp = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let header = serde_json::json!({
            "version": 2,
            "width": cols,
            "height": rows,
            "timestamp": timestamp,
            "env": {"TERM": "xterm"},
        })
        .to_string();
        let id = store.start_recording(&scope, device, user, tunnel_id, &header).await?;
        let start = Instant::now();
        let (events, queue) = mpsc::channel::<(f64, Event)>(QUEUE);
        let (stop, stopped) = watch::channel(None);
        let mut size = i64::try_from(header.len() + 1).unwrap_or(i64::MAX);
        tokio::spawn(async move {
            let mut queue = queue;
            while let Some(first) = queue.recv().await {
                let mut lines = line(first);
                while let Ok(next) = queue.try_recv() {
                    lines.push_str(&line(next));
                }
                let room = max_bytes.saturating_sub(size);
                let last = i64::try_from(lines.len()).unwrap_or(i64::MAX) > room;
                if last {
                    let why = format!("the session's recording reached its limit of {}", size_text(max_bytes));
                    lines = fitted(&lines, room, start.elapsed().as_secs_f64(), &why);
                    let _ = append(&store, &scope, &id, &lines).await;
                    let _ = stop.send(Some(why));
                    break;
                }
                match append(&store, &scope, &id, &lines).await {
                    Ok(now) => size = now,
                    Err(error) => {
                        tracing::error!(recording = %id, %error, "writing a terminal recording failed");
                        let _ = stop.send(Some(format!("the session's recording cannot be written: {error}")));
                        break;
                    }
                }
            }
            // Senders still holding on see `stopped`; what they queue is not kept.
            queue.close();
            if let Err(error) = store.finish_recording(&scope, &id).await {
                tracing::error!(recording = %id, %error, "closing a terminal recording failed");
            }
        });
        Ok(Self { events, start, stopped })
    }

    /// Records one event, waiting while the writer is behind; `false` once
    /// the recording has stopped (the session must end).
    pub(super) async fn record(&self, event: Event) -> bool {
        let at = self.start.elapsed().as_secs_f64();
        self.events.send((at, event)).await.is_ok() && self.stopped.borrow().is_none()
    }

    /// Resolves with the reason once the recording stops before the session.
    pub(super) async fn stopped(&self) -> String {
        let mut stopped = self.stopped.clone();
        match stopped.wait_for(Option::is_some).await {
            Ok(why) => why.clone().unwrap_or_default(),
            // The writer is gone without a reason: it cannot write any more.
            Err(_) => "the session's recording ended".to_owned(),
        }
    }
}

/// `16 MiB`, or the bytes when less than a whole MiB.
fn size_text(bytes: i64) -> String {
    const MIB: i64 = 1024 * 1024;
    if bytes >= MIB && bytes % MIB == 0 {
        format!("{} MiB", bytes / MIB)
    } else {
        format!("{bytes} bytes")
    }
}

async fn append(store: &Store, scope: &TenantScope, id: &str, lines: &str) -> Result<i64, StoreError> {
    store.append_recording(scope, id, lines).await
}

/// The whole events of `lines` that fit in `room` bytes together with a last
/// output event saying why the recording ends there.
fn fitted(lines: &str, room: i64, at: f64, why: &str) -> String {
    let closing = line((at, Event("o", format!("\r\n[{why}]\r\n"))));
    let budget = usize::try_from(room).unwrap_or(0).saturating_sub(closing.len());
    let mut kept = 0;
    for l in lines.split_inclusive('\n') {
        if kept + l.len() > budget {
            break;
        }
        kept += l.len();
    }
    let mut out = lines[..kept].to_owned();
    if closing.len() <= usize::try_from(room).unwrap_or(0) {
        out.push_str(&closing);
    }
    out
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
    use outpost_store::AdminScope;
    use outpost_store::audit::Actor;
    use outpost_store::devices::NewDevice;

    /// A store with one device; its tenant's scope.
    async fn device(dir: &std::path::Path) -> (Store, TenantScope, DeviceId) {
        let store = Store::open(dir, None).await.expect("store");
        let admin = AdminScope::for_tests();
        let site = store.ensure_site(&admin, "acme", "hq").await.expect("site");
        let scope = admin.tenant_scope(site.tenant);
        let device = DeviceId::random();
        let new = NewDevice {
            id: device,
            site: site.site,
            address: "192.0.2.1".into(),
            api_port: 8728,
            api_tls: false,
            ssh_port: 22,
            username: "admin".into(),
            password_sealed: vec![0; 32],
            poll_interval_secs: 60,
        };
        store
            .add_device(&scope, &new, &Actor::local_operator())
            .await
            .expect("device");
        (store, scope, device)
    }

    #[tokio::test]
    async fn a_recording_at_its_cap_stops_the_session_and_keeps_what_fit() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (store, scope, device) = device(dir.path()).await;
        let max = 4096;
        let recorder = Recorder::start(store.clone(), scope, device, "ops", "t1", (80, 24), max)
            .await
            .expect("recording");
        let mut kept = 0;
        // The queue takes QUEUE events before a send waits for the writer.
        for i in 0..10 * QUEUE {
            if !recorder
                .record(Event("o", format!("line {i} {}\r\n", "x".repeat(50))))
                .await
            {
                break;
            }
            kept += 1;
        }
        assert!(kept < 10 * QUEUE, "recording never stopped");
        let why = tokio::time::timeout(std::time::Duration::from_secs(10), recorder.stopped())
            .await
            .expect("stopped in time");
        assert_eq!(why, "the session's recording reached its limit of 4096 bytes");
        drop(recorder);
        let list = store.device_recordings(&scope, device, 10).await.expect("list");
        let id = list.first().map(|r| r.id.clone()).expect("one recording");
        let ended = tokio::time::timeout(std::time::Duration::from_secs(10), async {
            loop {
                let r = store.recording(&scope, &id).await.expect("recording");
                if r.info.ended_at_ms.is_some() {
                    return r;
                }
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        })
        .await
        .expect("ended in time");
        assert!(ended.info.size_bytes <= max, "{} > {max}", ended.info.size_bytes);
        assert_eq!(ended.info.size_bytes, ended.cast.len() as i64);
        let events: Vec<serde_json::Value> = ended
            .cast
            .lines()
            .skip(1)
            .map(|l| serde_json::from_str(l).expect("a whole event"))
            .collect();
        assert!(events.len() > 10, "{}", ended.cast);
        let last = events.last().and_then(|e| e[2].as_str()).unwrap_or_default();
        assert!(last.contains("reached its limit"), "{last}");
    }

    #[tokio::test]
    async fn a_recording_for_another_tenants_device_does_not_start() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (store, _, device) = device(dir.path()).await;
        let other = store
            .ensure_site(&AdminScope::for_tests(), "globex", "hq")
            .await
            .expect("site");
        let scope = AdminScope::for_tests().tenant_scope(other.tenant);
        assert!(
            Recorder::start(store, scope, device, "eve", "t2", (80, 24), MAX_RECORDING_BYTES)
                .await
                .is_err()
        );
    }

    #[test]
    fn utf8_split_across_chunks_is_kept_whole() {
        let mut c = Utf8Carry::default();
        let bytes = "né".as_bytes();
        assert_eq!(c.push(&bytes[..2]), "n");
        assert_eq!(c.push(&bytes[2..]), "é");
        assert_eq!(c.push(b"\xff!"), "\u{fffd}!");
    }

    #[test]
    fn the_last_chunk_keeps_whole_events_and_says_why_within_the_room() {
        let lines = format!(
            "{}{}",
            line((0.5, Event("o", "a".repeat(40)))),
            line((0.6, Event("o", "b".repeat(40))))
        );
        let first_len = lines.split_inclusive('\n').next().map_or(0, str::len);
        let out = fitted(&lines, 100, 1.0, "full");
        assert!(out.len() <= 100, "{out}");
        assert!(out.starts_with(&lines[..first_len]) && !out.contains('b'), "{out}");
        assert!(out.ends_with("[1.0,\"o\",\"\\r\\n[full]\\r\\n\"]\n"), "{out}");
        assert_eq!(fitted(&lines, 5, 1.0, "full"), "", "no room even for the reason");
    }

    #[test]
    fn events_are_asciicast_lines() {
        assert_eq!(line((1.23456, Event("o", "a\"b".into()))), "[1.235,\"o\",\"a\\\"b\"]\n");
    }
}
