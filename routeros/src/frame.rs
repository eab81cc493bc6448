//! RouterOS API framing: length-prefixed words, sentences ended by an empty word.
//!
//! Length prefix (big-endian):
//!
//! | length                 | bytes | encoding                  |
//! |------------------------|-------|---------------------------|
//! | 0 – 0x7F               | 1     | `len`                     |
//! | 0x80 – 0x3FFF          | 2     | `len | 0x8000`            |
//! | 0x4000 – 0x1F_FFFF     | 3     | `len | 0xC0_0000`         |
//! | 0x20_0000 – 0xFFF_FFFF | 4     | `len | 0xE000_0000`       |
//! | ≥ 0x1000_0000          | 5     | `0xF0`, then 4-byte `len` |
//!
//! First bytes 0xF1–0xFF are reserved (control bytes) and refused.
//!
//! Decoding is incremental: [`decode_sentence`] answers `Ok(None)` until a whole
//! sentence is buffered, which is a normal state on a socket, and never panics
//! on any input.

/// Longest word accepted: far above any real reply, small enough that a hostile
/// peer cannot make us allocate gigabytes.
pub const MAX_WORD: usize = 16 * 1024 * 1024;
/// Most words in one sentence.
pub const MAX_WORDS: usize = 65_536;

/// Framing errors: the connection cannot continue after one.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum FrameError {
    /// A reserved first byte.
    #[error("reserved control byte 0x{0:02x} where a word length was expected")]
    ControlByte(u8),
    /// A word longer than [`MAX_WORD`].
    #[error("word of {0} bytes exceeds the {MAX_WORD}-byte limit")]
    WordTooLong(u64),
    /// More words than [`MAX_WORDS`].
    #[error("sentence has more than {MAX_WORDS} words")]
    TooManyWords,
}

/// Appends the length prefix for `len`.
pub fn encode_length(len: usize, out: &mut Vec<u8>) {
    let len = len as u64;
    match len {
        0..=0x7F => out.push(len as u8),
        0x80..=0x3FFF => out.extend_from_slice(&((len as u16) | 0x8000).to_be_bytes()),
        0x4000..=0x1F_FFFF => out.extend_from_slice(&((len as u32) | 0xC0_0000).to_be_bytes()[1..]),
        0x20_0000..=0xFFF_FFFF => out.extend_from_slice(&((len as u32) | 0xE000_0000).to_be_bytes()),
        _ => {
            out.push(0xF0);
            out.extend_from_slice(&(len.min(u64::from(u32::MAX)) as u32).to_be_bytes());
        }
    }
}

/// Decodes a length prefix: `Ok(Some((len, prefix_bytes)))`, or `Ok(None)` if
/// more bytes are needed.
pub fn decode_length(buf: &[u8]) -> Result<Option<(u64, usize)>, FrameError> {
    let Some(&b0) = buf.first() else { return Ok(None) };
    let (width, first) = match b0 {
        0x00..=0x7F => return Ok(Some((u64::from(b0), 1))),
        0x80..=0xBF => (2, b0 & 0x3F),
        0xC0..=0xDF => (3, b0 & 0x1F),
        0xE0..=0xEF => (4, b0 & 0x0F),
        0xF0 => (5, 0),
        _ => return Err(FrameError::ControlByte(b0)),
    };
    if buf.len() < width {
        return Ok(None);
    }
    let mut len = u64::from(first);
    for &b in &buf[1..width] {
        len = (len << 8) | u64::from(b);
    }
    Ok(Some((len, width)))
}

/// Appends one word.
pub fn encode_word(word: &[u8], out: &mut Vec<u8>) {
    encode_length(word.len(), out);
    out.extend_from_slice(word);
}

/// Encodes a sentence: its words, then the empty word.
pub fn encode_sentence<W: AsRef<[u8]>>(words: &[W]) -> Vec<u8> {
    let mut out = Vec::with_capacity(words.iter().map(|w| w.as_ref().len() + 2).sum::<usize>() + 1);
    for w in words {
        encode_word(w.as_ref(), &mut out);
    }
    out.push(0);
    out
}

/// A decoded sentence and how many bytes it took.
pub type Decoded = (Vec<Vec<u8>>, usize);

/// Decodes one sentence from the front of `buf`: `Ok(Some((words, consumed)))`
/// when a whole sentence is there, `Ok(None)` when more bytes are needed.
/// Empty sentences (a lone empty word) are returned as an empty list.
pub fn decode_sentence(buf: &[u8]) -> Result<Option<Decoded>, FrameError> {
    let mut words = Vec::new();
    let mut at = 0usize;
    loop {
        let Some((len, width)) = decode_length(&buf[at..])? else {
            return Ok(None);
        };
        if len > MAX_WORD as u64 {
            return Err(FrameError::WordTooLong(len));
        }
        let len = len as usize;
        if len == 0 {
            return Ok(Some((words, at + width)));
        }
        let start = at + width;
        let Some(word) = buf.get(start..start + len) else {
            return Ok(None);
        };
        if words.len() == MAX_WORDS {
            return Err(FrameError::TooManyWords);
        }
        words.push(word.to_vec());
        at = start + len;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn prefix(len: usize) -> Vec<u8> {
        let mut v = Vec::new();
        encode_length(len, &mut v);
        v
    }

    /// Golden bytes from the length table of the RouterOS API manual, at every
    /// boundary, written out by hand rather than by the encoder.
    #[test]
    fn length_prefixes_match_the_manual() {
        let cases: &[(usize, &[u8])] = &[
            (0, &[0x00]),
            (1, &[0x01]),
            (0x7F, &[0x7F]),
            (0x80, &[0x80, 0x80]),
            (0x3FFF, &[0xBF, 0xFF]),
            (0x4000, &[0xC0, 0x40, 0x00]),
            (0x1F_FFFF, &[0xDF, 0xFF, 0xFF]),
            (0x20_0000, &[0xE0, 0x20, 0x00, 0x00]),
            (0xFFF_FFFF, &[0xEF, 0xFF, 0xFF, 0xFF]),
            (0x1000_0000, &[0xF0, 0x10, 0x00, 0x00, 0x00]),
        ];
        for &(len, bytes) in cases {
            assert_eq!(prefix(len), bytes, "encode {len:#x}");
            assert_eq!(
                decode_length(bytes),
                Ok(Some((len as u64, bytes.len()))),
                "decode {len:#x}"
            );
        }
    }

    #[test]
    fn login_sentence_is_byte_exact() {
        let bytes = encode_sentence(&["/login", "=name=admin", "=password="]);
        let mut expected = vec![6];
        expected.extend_from_slice(b"/login");
        expected.push(11);
        expected.extend_from_slice(b"=name=admin");
        expected.push(10);
        expected.extend_from_slice(b"=password=");
        expected.push(0);
        assert_eq!(bytes, expected);
        let (words, used) = decode_sentence(&bytes).expect("valid").expect("complete");
        assert_eq!(used, bytes.len());
        assert_eq!(
            words,
            vec![b"/login".to_vec(), b"=name=admin".to_vec(), b"=password=".to_vec()]
        );
    }

    #[test]
    fn incomplete_input_asks_for_more() {
        let bytes = encode_sentence(&["!re", "=name=ether1", ".tag=7"]);
        for cut in 0..bytes.len() {
            assert_eq!(decode_sentence(&bytes[..cut]), Ok(None), "cut at {cut}");
        }
        assert!(decode_sentence(&bytes).expect("valid").is_some());
        assert_eq!(decode_length(&[0x80]), Ok(None));
        assert_eq!(decode_length(&[0xF0, 0, 0]), Ok(None));
    }

    #[test]
    fn reserved_and_oversized_are_errors() {
        for b in 0xF1..=0xFF {
            assert_eq!(decode_length(&[b]), Err(FrameError::ControlByte(b)));
        }
        assert_eq!(
            decode_sentence(&[0xF0, 0x7F, 0, 0, 0]),
            Err(FrameError::WordTooLong(0x7F00_0000))
        );
    }

    #[test]
    fn consecutive_sentences_split_cleanly() {
        let mut bytes = encode_sentence(&["!re", "=a=1"]);
        bytes.extend(encode_sentence(&["!done"]));
        let (first, used) = decode_sentence(&bytes).expect("valid").expect("first");
        assert_eq!(first.len(), 2);
        let (second, rest) = decode_sentence(&bytes[used..]).expect("valid").expect("second");
        assert_eq!(second, vec![b"!done".to_vec()]);
        assert_eq!(used + rest, bytes.len());
    }

    proptest! {
        #[test]
        fn lengths_round_trip(len in 0usize..0x2000_0000) {
            let p = prefix(len);
            prop_assert_eq!(decode_length(&p), Ok(Some((len as u64, p.len()))));
        }

        #[test]
        fn sentences_round_trip(words in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..300), 0..20)) {
            let bytes = encode_sentence(&words);
            let (back, used) = decode_sentence(&bytes).expect("valid").expect("complete");
            prop_assert_eq!(back, words);
            prop_assert_eq!(used, bytes.len());
        }

        #[test]
        fn decoding_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode_sentence(&bytes);
        }
    }
}
