//! Sentences with meaning: commands we send and replies we receive.
//!
//! A command is its path (`/interface/print`), attribute words `=name=value`,
//! API attributes (`=.proplist=a,b`, `.tag=N`) and query words (`?type=ether`,
//! `?#|`). A reply starts with `!re`, `!done`, `!trap`, `!fatal`, `!empty`
//! (RouterOS 7.18+) or a word we do not know yet, which is kept, not refused.
//!
//! Words are bytes on the wire; invalid UTF-8 is replaced, never refused, so a
//! router with a strange interface comment cannot break a poll.

use std::borrow::Cow;

/// A command to send: built here, tagged by the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    words: Vec<String>,
}

impl Command {
    /// A command with its path, e.g. `/system/resource/print`.
    pub fn new(path: impl Into<String>) -> Self {
        Self {
            words: vec![path.into()],
        }
    }

    /// Adds `=key=value`.
    pub fn attr(mut self, key: &str, value: &str) -> Self {
        self.words.push(format!("={key}={value}"));
        self
    }

    /// Adds a query word: `type=ether` becomes `?type=ether`; a word already
    /// starting with `?` (`?#|`, `?-disabled`) is sent as it is.
    pub fn query(mut self, query: &str) -> Self {
        if query.starts_with('?') {
            self.words.push(query.to_owned());
        } else {
            self.words.push(format!("?{query}"));
        }
        self
    }

    /// Asks only for these properties (`=.proplist=a,b`), which keeps replies
    /// small and spares the router slow-to-compute fields.
    pub fn proplist(mut self, names: &[&str]) -> Self {
        self.words.push(format!("=.proplist={}", names.join(",")));
        self
    }

    /// The command's path.
    pub fn path(&self) -> &str {
        // `new` always pushes the path first and nothing removes words.
        &self.words[0]
    }

    /// The words as they go on the wire, with `.tag=tag` when given.
    pub fn words(&self, tag: Option<u64>) -> Vec<String> {
        let mut words = self.words.clone();
        if let Some(tag) = tag {
            words.push(format!(".tag={tag}"));
        }
        words
    }
}

/// Attributes of a reply, in the order the router sent them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attrs(Vec<(String, String)>);

impl Attrs {
    /// The value of the first attribute named `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// All attributes, in wire order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// How many attributes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Appends an attribute.
    pub fn push(&mut self, key: impl Into<String>, value: impl Into<String>) {
        self.0.push((key.into(), value.into()));
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for Attrs {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        Self(iter.into_iter().map(|(k, v)| (k.into(), v.into())).collect())
    }
}

/// One reply sentence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// One row of data.
    Re(Attrs),
    /// The command finished; may carry attributes (`=ret=`).
    Done(Attrs),
    /// The command failed; `!done` follows.
    Trap {
        /// `=message=`, empty if absent.
        message: String,
        /// `=category=`, if present and numeric.
        category: Option<u32>,
        /// Every attribute, `message` and `category` included.
        attrs: Attrs,
    },
    /// The router ends the session; the reason is the word after `!fatal`.
    Fatal(String),
    /// RouterOS 7.18+: the command has no data; `!done` follows.
    Empty,
    /// A reply word this client does not know.
    Unknown {
        /// The word, e.g. `!foo`.
        word: String,
        /// Its attributes.
        attrs: Attrs,
    },
}

/// A reply and the `.tag` it carried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tagged {
    /// The `.tag` value, if the reply had one.
    pub tag: Option<String>,
    /// The reply.
    pub reply: Reply,
}

impl Tagged {
    /// Parses a reply sentence; `None` for an empty sentence, which carries
    /// nothing. Never fails: unknown words become [`Reply::Unknown`], words
    /// that are not attributes are ignored.
    pub fn parse(words: &[Vec<u8>]) -> Option<Self> {
        let (first, rest) = words.split_first()?;
        let first = String::from_utf8_lossy(first);
        let mut tag = None;
        let mut attrs = Attrs::default();
        let mut bare = Vec::new();
        for word in rest {
            let word = String::from_utf8_lossy(word);
            if let Some(value) = word.strip_prefix(".tag=") {
                tag = Some(value.to_owned());
            } else if let Some((k, v)) = split_attribute(&word) {
                attrs.push(k, v);
            } else {
                bare.push(word);
            }
        }
        let reply = match first.as_ref() {
            "!re" => Reply::Re(attrs),
            "!done" => Reply::Done(attrs),
            "!trap" => Reply::Trap {
                message: attrs.get("message").unwrap_or_default().to_owned(),
                category: attrs.get("category").and_then(|c| c.parse().ok()),
                attrs,
            },
            "!fatal" => Reply::Fatal(
                bare.first()
                    .map(Cow::to_string)
                    .or_else(|| attrs.get("message").map(str::to_owned))
                    .unwrap_or_default(),
            ),
            "!empty" => Reply::Empty,
            _ => Reply::Unknown {
                word: first.into_owned(),
                attrs,
            },
        };
        Some(Self { tag, reply })
    }
}

/// Splits `=key=value` on the second `=`; values may hold more `=`.
fn split_attribute(word: &str) -> Option<(&str, &str)> {
    word.strip_prefix('=')?.split_once('=')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame;

    /// Builds wire bytes by hand: each word here is shorter than 0x80 bytes, so
    /// its length prefix is the single byte given.
    fn hand(words: &[(u8, &str)]) -> Vec<u8> {
        let mut out = Vec::new();
        for (len, w) in words {
            assert_eq!(usize::from(*len), w.len(), "test typo in {w:?}");
            out.push(*len);
            out.extend_from_slice(w.as_bytes());
        }
        out.push(0);
        out
    }

    #[test]
    fn tagged_print_with_proplist_and_queries_is_byte_exact() {
        let cmd = Command::new("/interface/print")
            .proplist(&["name", "rx-byte"])
            .query("type=ether")
            .query("?type=vlan")
            .query("?#|");
        let expected = [
            0x10, b'/', b'i', b'n', b't', b'e', b'r', b'f', b'a', b'c', b'e', b'/', b'p', b'r', b'i', b'n', b't', 0x17,
            b'=', b'.', b'p', b'r', b'o', b'p', b'l', b'i', b's', b't', b'=', b'n', b'a', b'm', b'e', b',', b'r', b'x',
            b'-', b'b', b'y', b't', b'e', 0x0B, b'?', b't', b'y', b'p', b'e', b'=', b'e', b't', b'h', b'e', b'r', 0x0A,
            b'?', b't', b'y', b'p', b'e', b'=', b'v', b'l', b'a', b'n', 0x03, b'?', b'#', b'|', 0x07, b'.', b't', b'a',
            b'g', b'=', b'4', b'2', 0x00,
        ];
        assert_eq!(frame::encode_sentence(&cmd.words(Some(42))), expected);
        assert_eq!(cmd.path(), "/interface/print");
    }

    #[test]
    fn trap_with_category_parses_from_hand_written_bytes() {
        let bytes = hand(&[
            (5, "!trap"),
            (11, "=category=0"),
            (31, "=message=no such command prefix"),
            (6, ".tag=3"),
        ]);
        let (words, used) = frame::decode_sentence(&bytes).expect("valid").expect("complete");
        assert_eq!(used, bytes.len());
        let t = Tagged::parse(&words).expect("non-empty");
        assert_eq!(t.tag.as_deref(), Some("3"));
        match t.reply {
            Reply::Trap { message, category, .. } => {
                assert_eq!(message, "no such command prefix");
                assert_eq!(category, Some(0));
            }
            other => panic!("expected a trap, got {other:?}"),
        }
    }

    #[test]
    fn fatal_reason_is_the_next_word() {
        let bytes = hand(&[(6, "!fatal"), (29, "session terminated on request")]);
        let (words, _) = frame::decode_sentence(&bytes).expect("valid").expect("complete");
        assert_eq!(
            Tagged::parse(&words).expect("non-empty").reply,
            Reply::Fatal("session terminated on request".into())
        );
    }

    #[test]
    fn values_keep_their_equals_signs_and_bad_utf8_is_replaced() {
        let words = vec![
            b"!re".to_vec(),
            b"=comment=a=b==c".to_vec(),
            b"=name=\xffeth".to_vec(),
            b"=empty=".to_vec(),
            b".tag=9".to_vec(),
        ];
        let t = Tagged::parse(&words).expect("non-empty");
        let Reply::Re(attrs) = t.reply else {
            panic!("expected !re")
        };
        assert_eq!(attrs.get("comment"), Some("a=b==c"));
        assert_eq!(attrs.get("name"), Some("\u{FFFD}eth"));
        assert_eq!(attrs.get("empty"), Some(""));
        assert_eq!(attrs.get("missing"), None);
    }

    proptest::proptest! {
        #[test]
        fn parsing_any_words_never_panics(
            words in proptest::collection::vec(proptest::collection::vec(proptest::prelude::any::<u8>(), 0..24), 0..8)
        ) {
            let _ = Tagged::parse(&words);
        }
    }

    #[test]
    fn empty_and_unknown_words_are_replies_not_errors() {
        let empty = Tagged::parse(&[b"!empty".to_vec(), b".tag=5".to_vec()]).expect("non-empty");
        assert_eq!(empty.reply, Reply::Empty);
        assert_eq!(empty.tag.as_deref(), Some("5"));
        let unknown = Tagged::parse(&[b"!foo".to_vec(), b"=a=1".to_vec()]).expect("non-empty");
        assert!(matches!(unknown.reply, Reply::Unknown { ref word, .. } if word == "!foo"));
        assert_eq!(Tagged::parse(&[]), None);
    }
}
