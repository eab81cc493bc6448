//! A scripted RouterOS peer for tests: reads and writes whole sentences with
//! the crate's own `Connection`, and the test says what to answer.
#![allow(dead_code)]

use outpost_routeros::connection::Connection;
use tokio::io::{AsyncRead, AsyncWrite};

pub struct Peer<S> {
    pub conn: Connection<S>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Peer<S> {
    pub fn new(stream: S) -> Self {
        Self {
            conn: Connection::new(stream),
        }
    }

    /// The next sentence as text; panics (failing the test) on close.
    pub async fn read(&mut self) -> Vec<String> {
        let words = self
            .conn
            .read_sentence()
            .await
            .expect("client sent valid framing")
            .expect("client did not close");
        words
            .into_iter()
            .map(|w| String::from_utf8(w).expect("client sends UTF-8"))
            .collect()
    }

    pub async fn send(&mut self, words: &[&str]) {
        self.conn.write_sentence(words).await.expect("write to client");
    }

    /// Reads a `/login =name= =password=` and accepts it.
    pub async fn accept_login(&mut self, user: &str, password: &str) {
        let login = self.read().await;
        assert_eq!(
            login,
            ["/login", &format!("=name={user}"), &format!("=password={password}")]
        );
        self.send(&["!done"]).await;
    }

    /// Reads a command; returns its words and its `.tag` word (`.tag=N`).
    pub async fn read_command(&mut self) -> (Vec<String>, String) {
        let words = self.read().await;
        let tag = words
            .iter()
            .find(|w| w.starts_with(".tag="))
            .cloned()
            .expect("every command is tagged");
        (words, tag)
    }
}
