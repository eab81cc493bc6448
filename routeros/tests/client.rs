//! The client against a scripted peer: login variants, multiplexing by tag,
//! reply words old and new, session failures, timeouts and cancellation.

mod support;

use std::time::Duration;

use md5::{Digest, Md5};
use outpost_routeros::connection::ConnectionError;
use outpost_routeros::frame::FrameError;
use outpost_routeros::{Client, ClientConfig, Command, Error, ErrorKind, LoginKind, command};
use support::Peer;
use tokio::io::{AsyncWriteExt, DuplexStream};
use tokio::net::TcpListener;

fn config() -> ClientConfig {
    ClientConfig::plain("127.0.0.1", "admin", "s3cret")
}

/// A client and the router end of an in-memory pipe, logged in.
async fn pair() -> (Client, Peer<DuplexStream>) {
    let (ours, theirs) = tokio::io::duplex(64 * 1024);
    let router = tokio::spawn(async move {
        let mut peer = Peer::new(theirs);
        peer.accept_login("admin", "s3cret").await;
        peer
    });
    let (client, login) = Client::over_stream(ours, &config()).await.expect("login");
    assert_eq!(login, LoginKind::Plain);
    (client, router.await.expect("router task"))
}

/// Logs in over a pipe whose router answers `/login` with `answer`.
async fn login_answered_with(answer: Vec<Vec<&'static str>>) -> Result<LoginKind, Error> {
    let (ours, theirs) = tokio::io::duplex(4096);
    let router = tokio::spawn(async move {
        let mut peer = Peer::new(theirs);
        peer.read().await;
        for sentence in answer {
            peer.send(&sentence).await;
        }
        peer
    });
    let result = Client::over_stream(ours, &config()).await.map(|(_, kind)| kind);
    drop(router.await.expect("router task"));
    result
}

#[tokio::test]
async fn plaintext_login_over_tcp_then_a_typed_command() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
    let port = listener.local_addr().expect("bound").port();
    let router = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.expect("accept");
        let mut peer = Peer::new(tcp);
        peer.accept_login("admin", "s3cret").await;
        let (words, tag) = peer.read_command().await;
        assert_eq!(words[0], "/system/identity/print");
        assert!(words.contains(&"=.proplist=name".to_owned()));
        peer.send(&["!re", "=name=edge-1", &tag]).await;
        peer.send(&["!done", &tag]).await;
        peer
    });
    let (client, info) = Client::connect(ClientConfig { port, ..config() })
        .await
        .expect("connect");
    assert_eq!(info.login, LoginKind::Plain);
    assert_eq!(info.tls_fingerprint, None);
    let name = command::identity::fetch(&client).await.expect("identity");
    assert_eq!(name.as_deref(), Some("edge-1"));
    router.await.expect("router task");
}

#[tokio::test]
async fn a_closed_port_is_refused() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
    let port = listener.local_addr().expect("bound").port();
    drop(listener);
    let err = Client::connect(ClientConfig { port, ..config() })
        .await
        .expect_err("nothing listens");
    assert!(matches!(err, Error::Refused { .. }), "{err:?}");
    assert_eq!(err.kind(), ErrorKind::Unreachable);
}

#[tokio::test]
async fn legacy_routers_get_the_md5_challenge_response() {
    let (ours, theirs) = tokio::io::duplex(4096);
    let router = tokio::spawn(async move {
        let mut peer = Peer::new(theirs);
        peer.read().await;
        peer.send(&["!done", "=ret=00112233445566778899aabbccddeeff"]).await;
        let answer = peer.read().await;
        // response = "00" ‖ hex(md5(0x00 ‖ password ‖ challenge bytes))
        let mut input = vec![0u8];
        input.extend_from_slice(b"s3cret");
        input.extend_from_slice(&[
            0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff,
        ]);
        let digest = Md5::digest(&input);
        let expected: String = std::iter::once("00".to_owned())
            .chain(digest.iter().map(|b| format!("{b:02x}")))
            .collect();
        assert_eq!(answer, ["/login", "=name=admin", &format!("=response={expected}")]);
        peer.send(&["!done"]).await;
        peer
    });
    let (_client, login) = Client::over_stream(ours, &config()).await.expect("legacy login");
    assert_eq!(login, LoginKind::LegacyChallenge);
    router.await.expect("router task");
}

#[tokio::test]
async fn a_wrong_password_is_login_failed() {
    let err = login_answered_with(vec![
        vec!["!trap", "=message=invalid user name or password (6)"],
        vec!["!done"],
    ])
    .await
    .expect_err("refused");
    assert!(
        matches!(&err, Error::LoginFailed(m) if m.contains("invalid user name")),
        "{err:?}"
    );
    assert_eq!(err.kind(), ErrorKind::AuthFailed);
}

#[tokio::test]
async fn a_user_without_the_api_policy_is_told_so() {
    let err = login_answered_with(vec![vec!["!trap", "=message=not allowed (9)"], vec!["!done"]])
        .await
        .expect_err("refused");
    assert!(matches!(err, Error::NoApiPolicy), "{err:?}");
}

#[tokio::test]
async fn two_commands_interleave_and_replies_route_by_tag() {
    let (client, mut peer) = pair().await;
    let router = tokio::spawn(async move {
        let (a, tag_a) = peer.read_command().await;
        let (b, tag_b) = peer.read_command().await;
        let (tag_if, tag_addr) = if a[0] == "/interface/print" {
            (tag_a, tag_b)
        } else {
            assert_eq!(b[0], "/interface/print");
            (tag_b, tag_a)
        };
        peer.send(&["!re", "=address=192.0.2.1/24", &tag_addr]).await;
        peer.send(&["!re", "=name=ether1", &tag_if]).await;
        peer.send(&["!re", "=name=ether2", &tag_if]).await;
        peer.send(&["!done", &tag_addr]).await;
        peer.send(&["!re", "=name=ether3", &tag_if]).await;
        peer.send(&["!done", &tag_if]).await;
        peer
    });
    let (ifs, addrs) = tokio::join!(command::interfaces::fetch(&client), command::addresses::fetch(&client));
    let names: Vec<_> = ifs.expect("interfaces").into_iter().filter_map(|i| i.name).collect();
    assert_eq!(names, ["ether1", "ether2", "ether3"]);
    let addrs = addrs.expect("addresses");
    assert_eq!(addrs.len(), 1);
    assert_eq!(addrs[0].address.as_deref(), Some("192.0.2.1/24"));
    router.await.expect("router task");
}

#[tokio::test]
async fn empty_replies_and_unknown_words_are_tolerated() {
    let (client, mut peer) = pair().await;
    let router = tokio::spawn(async move {
        let (_, tag) = peer.read_command().await;
        peer.send(&["!empty", &tag]).await;
        peer.send(&["!done", &tag]).await;
        let (_, tag) = peer.read_command().await;
        peer.send(&["!foo", "=x=y", &tag]).await;
        peer.send(&["!re", "=name=ether1", &tag]).await;
        peer.send(&["!done", &tag]).await;
        peer
    });
    let empty = client.run(&Command::new("/interface/pptp-server/print")).await;
    assert_eq!(empty.expect("empty is fine"), []);
    let rows = client.run(&Command::new("/interface/print")).await.expect("rows");
    assert_eq!(rows.len(), 1);
    router.await.expect("router task");
}

#[tokio::test]
async fn a_trap_fails_one_command_and_chr_has_no_routerboard() {
    let (client, mut peer) = pair().await;
    let router = tokio::spawn(async move {
        let (words, tag) = peer.read_command().await;
        assert_eq!(words[0], "/system/routerboard/print");
        peer.send(&["!trap", "=category=0", "=message=no such command prefix", &tag])
            .await;
        peer.send(&["!done", &tag]).await;
        let (_, tag) = peer.read_command().await;
        peer.send(&["!trap", "=message=input does not match any value of interface", &tag])
            .await;
        peer.send(&["!done", &tag]).await;
        peer
    });
    assert_eq!(command::routerboard::fetch(&client).await.expect("CHR is fine"), None);
    let err = client
        .run(&Command::new("/interface/monitor-traffic"))
        .await
        .expect_err("trap");
    assert!(matches!(&err, Error::Trap { category: None, .. }), "{err:?}");
    assert_eq!(err.kind(), ErrorKind::CommandFailed);
    assert!(!client.is_closed());
    router.await.expect("router task");
}

#[tokio::test]
async fn fatal_fails_every_pending_command() {
    let (client, mut peer) = pair().await;
    let router = tokio::spawn(async move {
        peer.read_command().await;
        peer.read_command().await;
        peer.send(&["!fatal", "session terminated on request"]).await;
        peer
    });
    let cmd = Command::new("/interface/print");
    let (a, b) = tokio::join!(client.run(&cmd), client.run(&cmd));
    for result in [a, b] {
        assert!(
            matches!(&result, Err(Error::Fatal(r)) if r == "session terminated on request"),
            "{result:?}"
        );
    }
    assert!(client.is_closed());
    assert!(matches!(client.run(&cmd).await, Err(Error::Fatal(_))));
    router.await.expect("router task");
}

#[tokio::test]
async fn a_truncated_word_then_close_is_a_protocol_error() {
    let (client, mut peer) = pair().await;
    let router = tokio::spawn(async move {
        peer.read_command().await;
        let mut stream = peer.conn.into_inner();
        stream.write_all(&[5, b'!', b'r']).await.expect("write");
    });
    let err = client.run(&Command::new("/interface/print")).await.expect_err("broken");
    router.await.expect("router task");
    match &err {
        Error::Protocol(e) => assert!(matches!(**e, ConnectionError::Truncated(_)), "{e:?}"),
        other => panic!("expected a protocol error, got {other:?}"),
    }
    assert_eq!(err.kind(), ErrorKind::SessionLost);
    assert!(client.is_closed());
}

#[tokio::test]
async fn an_absurd_length_prefix_is_refused_without_allocating() {
    let (client, mut peer) = pair().await;
    let router = tokio::spawn(async move {
        peer.read_command().await;
        let mut stream = peer.conn.into_inner();
        // A 5-byte prefix claiming a 2 GiB word.
        stream.write_all(&[0xF0, 0x7F, 0xFF, 0xFF, 0xFF]).await.expect("write");
        stream
    });
    let err = client
        .run(&Command::new("/interface/print"))
        .await
        .expect_err("refused");
    match &err {
        Error::Protocol(e) => assert!(
            matches!(**e, ConnectionError::Frame(FrameError::WordTooLong(0x7FFF_FFFF))),
            "{e:?}"
        ),
        other => panic!("expected a protocol error, got {other:?}"),
    }
    drop(router.await.expect("router task"));
}

#[tokio::test(start_paused = true)]
async fn a_slow_reply_times_out_and_the_command_is_cancelled() {
    let (client, mut peer) = pair().await;
    let router = tokio::spawn(async move {
        let (_, tag) = peer.read_command().await;
        let n = tag.trim_start_matches(".tag=").to_owned();
        // The client gives up and cancels; the late answer must be dropped.
        assert_eq!(peer.read().await, ["/cancel", &format!("=tag={n}")]);
        peer.send(&["!re", "=name=late", &tag]).await;
        peer.send(&["!trap", "=category=2", "=message=interrupted", &tag]).await;
        peer.send(&["!done", &tag]).await;
        let (_, tag) = peer.read_command().await;
        peer.send(&["!re", "=name=on-time", &tag]).await;
        peer.send(&["!done", &tag]).await;
        peer
    });
    let started = tokio::time::Instant::now();
    let err = client.run(&Command::new("/interface/print")).await.expect_err("slow");
    assert!(
        matches!(&err, Error::Timeout { what } if what == "command /interface/print"),
        "{err:?}"
    );
    assert_eq!(started.elapsed(), Duration::from_secs(30));
    let rows = client
        .run(&Command::new("/interface/print"))
        .await
        .expect("next command");
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].get("name"), Some("on-time"));
    router.await.expect("router task");
}

#[tokio::test]
async fn a_stream_yields_rows_and_cancel_swallows_the_interruption() {
    let (client, mut peer) = pair().await;
    let router = tokio::spawn(async move {
        let (words, tag) = peer.read_command().await;
        assert_eq!(words[0], "/interface/monitor-traffic");
        assert!(words.contains(&"=interface=ether1,ether2".to_owned()));
        peer.send(&["!re", "=name=ether1", "=rx-bits-per-second=1000", &tag])
            .await;
        peer.send(&["!re", "=name=ether2", "=tx-bits-per-second=2000", &tag])
            .await;
        let n = tag.trim_start_matches(".tag=").to_owned();
        assert_eq!(peer.read().await, ["/cancel", &format!("=tag={n}")]);
        peer.send(&["!trap", "=category=2", "=message=interrupted", &tag]).await;
        peer.send(&["!done", &tag]).await;
        let (_, tag) = peer.read_command().await;
        peer.send(&["!done", &tag]).await;
        peer
    });
    let mut stream = command::monitor_traffic::start(&client, &["ether1", "ether2"])
        .await
        .expect("start");
    let first = command::monitor_traffic::parse(&stream.next().await.expect("row").expect("ok"));
    assert_eq!(
        (first.name.as_deref(), first.rx_bits_per_second),
        (Some("ether1"), Some(1000))
    );
    let second = command::monitor_traffic::parse(&stream.next().await.expect("row").expect("ok"));
    assert_eq!(second.tx_bits_per_second, Some(2000));
    stream.cancel();
    // The interruption went nowhere: the next command sees only its own reply.
    assert_eq!(
        client.run(&Command::new("/system/identity/print")).await.expect("ok"),
        []
    );
    router.await.expect("router task");
}

#[tokio::test]
async fn closing_ends_open_streams() {
    let (client, mut peer) = pair().await;
    let mut stream = client
        .stream(&Command::new("/log/print").attr("follow", ""))
        .await
        .expect("start");
    peer.read_command().await;
    assert!(!client.is_closed());
    client.close();
    let end = stream.next().await.expect("an error, then nothing");
    assert!(matches!(end, Err(Error::Closed)), "{end:?}");
    assert!(stream.next().await.is_none());
}

#[tokio::test]
async fn a_stream_nobody_reads_is_cancelled_not_buffered() {
    let (client, mut peer) = pair().await;
    let mut stream = client.stream(&Command::new("/interface/listen")).await.expect("start");
    let (_, tag) = peer.read_command().await;
    let n = tag.trim_start_matches(".tag=").to_owned();
    let router = tokio::spawn(async move {
        for i in 0..1000 {
            peer.send(&["!re", &format!("=name=if{i}"), &tag]).await;
        }
        assert_eq!(peer.read().await, ["/cancel", &format!("=tag={n}")]);
        peer
    });
    let mut peer = router.await.expect("router task");
    let mut rows = 0;
    let end = loop {
        match stream.next().await.expect("rows, then an error") {
            Ok(_) => rows += 1,
            Err(e) => break e,
        }
    };
    assert!(
        matches!(&end, Error::Overrun { command } if command == "/interface/listen"),
        "{end:?}"
    );
    assert!((1..1000).contains(&rows), "{rows} rows kept");
    // The session itself is fine.
    let next = tokio::spawn(async move {
        let (_, tag) = peer.read_command().await;
        peer.send(&["!done", &tag]).await;
    });
    assert_eq!(
        client.run(&Command::new("/system/identity/print")).await.expect("ok"),
        []
    );
    next.await.expect("router task");
}

#[tokio::test(start_paused = true)]
async fn a_router_that_never_answers_the_login_times_out() {
    let (ours, theirs) = tokio::io::duplex(4096);
    let router = tokio::spawn(async move {
        let mut peer = Peer::new(theirs);
        peer.read().await;
        // Stay silent, holding the connection open.
        std::future::pending::<()>().await;
    });
    let err = Client::over_stream(ours, &config()).await.expect_err("silent router");
    assert!(matches!(&err, Error::Timeout { what } if what == "login"), "{err:?}");
    assert_eq!(err.kind(), ErrorKind::Unreachable);
    router.abort();
}

#[tokio::test]
async fn a_runaway_reply_is_cut_off_and_cancelled() {
    let (client, mut peer) = pair().await;
    let router = tokio::spawn(async move {
        let (_, tag) = peer.read_command().await;
        let n = tag.trim_start_matches(".tag=").to_owned();
        let mut rows = Vec::new();
        for _ in 0..=outpost_routeros::client::MAX_ROWS_PER_RUN {
            rows.extend(outpost_routeros::frame::encode_sentence(&["!re", "=name=x", &tag]));
        }
        let mut stream = peer.conn.into_inner();
        let (mut read, mut write) = tokio::io::split(&mut stream);
        let mut cancel = outpost_routeros::connection::Connection::new(&mut read);
        let (written, cancelled) = tokio::join!(write.write_all(&rows), cancel.read_sentence());
        written.expect("write rows");
        let cancelled = cancelled.expect("valid framing").expect("a /cancel");
        assert_eq!(cancelled, [b"/cancel".to_vec(), format!("=tag={n}").into_bytes()]);
    });
    let err = client
        .run(&Command::new("/ip/firewall/connection/print"))
        .await
        .expect_err("too big");
    assert!(matches!(err, Error::TooManyRows { .. }), "{err:?}");
    router.await.expect("router task");
}

#[tokio::test(start_paused = true)]
async fn an_empty_reply_without_done_cannot_hang_a_command() {
    let (client, mut peer) = pair().await;
    let router = tokio::spawn(async move {
        let (_, tag) = peer.read_command().await;
        peer.send(&["!empty", &tag]).await;
        peer.read().await
    });
    let err = client
        .run(&Command::new("/ip/route/print"))
        .await
        .expect_err("no !done");
    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
    assert_eq!(router.await.expect("router task")[0], "/cancel");
}

#[tokio::test]
async fn a_caller_that_stops_waiting_cancels_its_command() {
    let (client, mut peer) = pair().await;
    let cmd = Command::new("/tool/ping").attr("address", "192.0.2.9");
    tokio::select! {
        _ = client.run(&cmd) => panic!("the router never answers"),
        (_, tag) = peer.read_command() => {
            let n = tag.trim_start_matches(".tag=");
            // Leaving the select drops the run future.
            assert_eq!(peer.read().await, ["/cancel", &format!("=tag={n}")]);
        }
    }
}

/// The login and the first command as bytes on the wire, written out by hand
/// from the manual, with no help from the crate's codec on the router side.
#[tokio::test]
async fn login_and_a_command_are_byte_exact_on_the_wire() {
    use tokio::io::AsyncReadExt;

    let (ours, mut theirs) = tokio::io::duplex(4096);
    let router = tokio::spawn(async move {
        let mut expected = vec![6];
        expected.extend_from_slice(b"/login");
        expected.push(11);
        expected.extend_from_slice(b"=name=admin");
        expected.push(16);
        expected.extend_from_slice(b"=password=s3cret");
        expected.push(0);
        let mut got = vec![0; expected.len()];
        theirs.read_exact(&mut got).await.expect("login bytes");
        assert_eq!(got, expected);
        theirs.write_all(b"\x05!done\x00").await.expect("write");

        let mut expected = vec![22];
        expected.extend_from_slice(b"/system/identity/print");
        expected.push(15);
        expected.extend_from_slice(b"=.proplist=name");
        expected.push(6);
        expected.extend_from_slice(b".tag=1");
        expected.push(0);
        let mut got = vec![0; expected.len()];
        theirs.read_exact(&mut got).await.expect("command bytes");
        assert_eq!(got, expected);
        theirs
            .write_all(b"\x03!re\x0a=name=edge\x06.tag=1\x00\x05!done\x06.tag=1\x00")
            .await
            .expect("write");
        theirs
    });
    let (client, _) = Client::over_stream(ours, &config()).await.expect("login");
    let name = command::identity::fetch(&client).await.expect("identity");
    assert_eq!(name.as_deref(), Some("edge"));
    drop(router.await.expect("router task"));
}

/// The agent spawns polls on a multi-threaded runtime: sessions, streams and
/// the futures of their calls must move between threads.
#[tokio::test]
async fn sessions_and_their_futures_are_send() {
    fn send_sync<T: Send + Sync>(_: &T) {}
    fn send<T: Send>(_: &T) {}
    let (client, _peer) = pair().await;
    send_sync(&client);
    let cmd = Command::new("/interface/print");
    send(&client.run(&cmd));
    send(&client.stream(&cmd));
    send(&command::resource::fetch(&client));
}
