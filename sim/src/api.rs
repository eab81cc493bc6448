//! One API connection (plain or TLS): reads sentences, answers `/login`,
//! `/cancel` and `/quit` itself, and runs every other command as its own task
//! so streams (`monitor-traffic`, `listen`) run alongside other commands, as
//! on a router. Command tasks send finished sentences to this task through a
//! bounded queue; this task is the only writer of the socket.
//!
//! Every reply carries the command's `.tag` when it had one, as the last word.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use outpost_routeros::connection::Connection;
use rand::SeedableRng;
use rand::rngs::StdRng;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::{broadcast, mpsc, watch};

use crate::commands::{self, Outcome, Stream};
use crate::data::{self, Now};
use crate::device::{ConnEvent, Device};
use crate::login::Login;
use crate::request::{self, Request};

/// Reply sentences queued towards the socket; a client that stops reading
/// stalls its own commands, nothing else.
const OUT_QUEUE: usize = 256;
/// Commands running at once on one connection.
const MAX_RUNNING: usize = 64;
/// How often listen streams look for changes.
const LISTEN_POLL: Duration = Duration::from_millis(250);

type Sentence = Vec<String>;

struct Running {
    tag: Option<String>,
    cancel: watch::Sender<bool>,
}

fn with_tag(mut words: Sentence, tag: Option<&str>) -> Sentence {
    if let Some(t) = tag {
        words.push(format!(".tag={t}"));
    }
    words
}

fn row_sentence(word: &str, row: &data::Row, tag: Option<&str>) -> Sentence {
    let mut s = Vec::with_capacity(row.len() + 2);
    s.push(word.to_owned());
    s.extend(row.iter().map(|(k, v)| format!("={k}={v}")));
    with_tag(s, tag)
}

/// Serves one connection until the peer leaves, `/quit`, or a fault closes it.
pub(crate) async fn serve<S>(stream: S, dev: Arc<Device>, peer: IpAddr, conn_seed: u64)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut conn = Connection::new(stream);
    let (tx, mut rx) = mpsc::channel::<Sentence>(OUT_QUEUE);
    let mut events = dev.events.subscribe();
    let mut login = Login::default();
    let mut logged_in = false;
    let mut rng = StdRng::seed_from_u64(dev.profile.seed ^ conn_seed);
    let mut running: HashMap<u64, Running> = HashMap::new();
    let mut next_id = 0u64;
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<u64>();

    loop {
        tokio::select! {
            biased;
            ev = events.recv() => match ev {
                Ok(ConnEvent::Drop) | Err(broadcast::error::RecvError::Closed) => break,
                Ok(ConnEvent::Fatal) => {
                    let _ = conn.write_sentence(&["!fatal", "session terminated by administrator"]).await;
                    break;
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {}
            },
            Some(id) = done_rx.recv() => {
                running.remove(&id);
            }
            Some(out) = rx.recv() => {
                if conn.write_sentence(&out).await.is_err() {
                    break;
                }
            }
            read = conn.read_sentence() => {
                let words = match read {
                    Ok(Some(words)) => words,
                    Ok(None) | Err(_) => break,
                };
                // An empty sentence means nothing; routers ignore it.
                let Some(req) = Request::parse(&words) else { continue };
                let tag = req.tag.clone();
                let tag = tag.as_deref();
                if req.command == "/login" {
                    let (replies, ok) = login.handle(&dev, &req, peer, &mut rng);
                    logged_in |= ok;
                    for r in replies {
                        if conn.write_sentence(&with_tag(r, tag)).await.is_err() {
                            return;
                        }
                    }
                    continue;
                }
                if !logged_in {
                    let _ = conn.write_sentence(&["!fatal", "not logged in"]).await;
                    break;
                }
                match req.command.as_str() {
                    "/quit" => {
                        let _ = conn
                            .write_sentence(&with_tag(vec!["!fatal".into(), "session terminated on request".into()], tag))
                            .await;
                        break;
                    }
                    "/cancel" => {
                        let target = req.attr("tag");
                        for r in running.values() {
                            if target.is_none() || r.tag.as_deref() == target {
                                let _ = r.cancel.send(true);
                            }
                        }
                        if conn.write_sentence(&with_tag(vec!["!done".into()], tag)).await.is_err() {
                            break;
                        }
                    }
                    _ if running.len() >= MAX_RUNNING => {
                        let trap = vec!["!trap".into(), "=message=too many commands".into()];
                        if conn.write_sentence(&with_tag(trap, tag)).await.is_err()
                            || conn.write_sentence(&with_tag(vec!["!done".into()], tag)).await.is_err()
                        {
                            break;
                        }
                    }
                    _ => {
                        let (cancel, cancelled) = watch::channel(false);
                        let id = next_id;
                        next_id += 1;
                        running.insert(id, Running { tag: req.tag.clone(), cancel });
                        let (dev, tx, done_tx) = (dev.clone(), tx.clone(), done_tx.clone());
                        tokio::spawn(async move {
                            run(&dev, req, &tx, cancelled).await;
                            let _ = done_tx.send(id);
                        });
                    }
                }
            }
        }
    }
    // Stop streams at once rather than at their next send.
    for r in running.values() {
        let _ = r.cancel.send(true);
    }
    let _ = conn.get_mut().shutdown().await;
}

/// Sleeps `d`, or returns `false` early when the command is cancelled.
async fn pause(d: Duration, cancelled: &mut watch::Receiver<bool>) -> bool {
    if *cancelled.borrow() {
        return false;
    }
    tokio::select! {
        _ = tokio::time::sleep(d) => true,
        _ = cancelled.wait_for(|&c| c) => false,
    }
}

fn fault_matches(paths: &std::collections::BTreeSet<String>, command: &str) -> bool {
    paths.iter().any(|p| {
        command == p
            || command
                .strip_prefix(p.as_str())
                .is_some_and(|rest| rest.starts_with('/'))
    })
}

/// Runs one command and sends its replies.
async fn run(dev: &Device, req: Request, tx: &mpsc::Sender<Sentence>, mut cancelled: watch::Receiver<bool>) {
    let tag = req.tag.as_deref();
    let send = |s: Sentence| async move { tx.send(s).await.is_ok() };
    let faults = dev.state().faults.clone();
    if !faults.slow.is_zero() && !pause(faults.slow, &mut cancelled).await {
        let _ = send(interrupted(tag)).await;
        let _ = send(with_tag(vec!["!done".into()], tag)).await;
        return;
    }
    if let Some(word) = &faults.unknown_word
        && !send(with_tag(vec![word.clone()], tag)).await
    {
        return;
    }
    if fault_matches(&faults.traps, &req.command) {
        let trap = vec!["!trap".into(), "=message=failure: simulated fault".into()];
        if send(with_tag(trap, tag)).await {
            let _ = send(with_tag(vec!["!done".into()], tag)).await;
        }
        return;
    }
    if fault_matches(&faults.empties, &req.command) {
        if send(with_tag(vec!["!empty".into()], tag)).await {
            let _ = send(with_tag(vec!["!done".into()], tag)).await;
        }
        return;
    }
    match commands::dispatch(dev, &req) {
        Outcome::Rows(rows) => {
            let mut count = 0usize;
            let count_only = req.attr("count-only").is_some();
            for row in rows.iter().filter(|r| request::matches(r, &req.queries)) {
                count += 1;
                if count_only {
                    continue;
                }
                let row = request::project(row, req.proplist.as_deref());
                if !send(row_sentence("!re", &row, tag)).await {
                    return;
                }
            }
            if count_only {
                let _ = send(with_tag(vec!["!done".into(), format!("=ret={count}")], tag)).await;
                return;
            }
            if count == 0 && dev.profile.version.sends_empty() && !send(with_tag(vec!["!empty".into()], tag)).await {
                return;
            }
            let _ = send(with_tag(vec!["!done".into()], tag)).await;
        }
        Outcome::Trap { message, category } => {
            let mut s = vec!["!trap".to_owned()];
            if let Some(c) = category {
                s.push(format!("=category={c}"));
            }
            s.push(format!("=message={message}"));
            if send(with_tag(s, tag)).await {
                let _ = send(with_tag(vec!["!done".into()], tag)).await;
            }
        }
        Outcome::Stream(stream) => {
            let finished = match stream {
                Stream::MonitorTraffic { ifaces, once } => monitor(dev, &ifaces, once, &req, tx, &mut cancelled).await,
                Stream::LogListen => log_listen(dev, &req, tx, &mut cancelled).await,
                Stream::InterfaceListen => iface_listen(dev, &req, tx, &mut cancelled).await,
            };
            match finished {
                Some(true) => {
                    let _ = send(with_tag(vec!["!done".into()], tag)).await;
                }
                Some(false) if send(interrupted(tag)).await => {
                    let _ = send(with_tag(vec!["!done".into()], tag)).await;
                }
                Some(false) => {}
                None => {}
            }
        }
    }
}

/// What a cancelled command ends with.
fn interrupted(tag: Option<&str>) -> Sentence {
    with_tag(
        vec!["!trap".into(), "=category=2".into(), "=message=interrupted".into()],
        tag,
    )
}

/// `Some(true)`: ended by itself; `Some(false)`: cancelled; `None`: the
/// connection is gone.
type StreamEnd = Option<bool>;

async fn send_row(tx: &mpsc::Sender<Sentence>, row: &data::Row, req: &Request) -> bool {
    let row = request::project(row, req.proplist.as_deref());
    tx.send(row_sentence("!re", &row, req.tag.as_deref())).await.is_ok()
}

async fn monitor(
    dev: &Device,
    ifaces: &[usize],
    once: bool,
    req: &Request,
    tx: &mpsc::Sender<Sentence>,
    cancelled: &mut watch::Receiver<bool>,
) -> StreamEnd {
    loop {
        let now = Now::get();
        for &i in ifaces {
            if !send_row(tx, &data::traffic(dev, i, now), req).await {
                return None;
            }
        }
        if once {
            return Some(true);
        }
        if !pause(Duration::from_secs(1), cancelled).await {
            return Some(false);
        }
    }
}

async fn log_listen(
    dev: &Device,
    req: &Request,
    tx: &mpsc::Sender<Sentence>,
    cancelled: &mut watch::Receiver<bool>,
) -> StreamEnd {
    let mut seen = dev.state().next_log_id;
    loop {
        if !pause(LISTEN_POLL, cancelled).await {
            return Some(false);
        }
        let now = Now::get();
        let rows: Vec<data::Row> = {
            let mut st = dev.state();
            dev.catch_up_log(&mut st, now.mono, now.wall);
            let rows = st
                .log
                .iter()
                .filter(|e| e.id >= seen)
                .map(|e| data::log_row(dev, e, now))
                .collect();
            seen = st.next_log_id;
            rows
        };
        for row in rows.iter().filter(|r| request::matches(r, &req.queries)) {
            if !send_row(tx, row, req).await {
                return None;
            }
        }
    }
}

async fn iface_listen(
    dev: &Device,
    req: &Request,
    tx: &mpsc::Sender<Sentence>,
    cancelled: &mut watch::Receiver<bool>,
) -> StreamEnd {
    let mut seen = dev.state().iface_generation;
    loop {
        if !pause(LISTEN_POLL, cancelled).await {
            return Some(false);
        }
        let now = Now::get();
        let rows = {
            let st = dev.state();
            if st.iface_generation == seen {
                continue;
            }
            seen = st.iface_generation;
            data::interfaces(dev, &st, now)
        };
        for row in rows.iter().filter(|r| request::matches(r, &req.queries)) {
            if !send_row(tx, row, req).await {
                return None;
            }
        }
    }
}
