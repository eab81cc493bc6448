//! The interactive console of a simulated device, as an SSH shell on a pty
//! sees it: a `[user@identity] > ` prompt, echo, backspace, Enter, and a few
//! commands.
//!
//! - `/system identity print` answers `  name: IDENTITY`.
//! - `/export [terse] [show-sensitive|hide-sensitive]` as over exec (see
//!   [`crate::export`]).
//! - `/quit` (or `quit`) closes the session.
//! - Anything else gets RouterOS's `bad command name ...`.
//!
//! Ctrl-C drops the line being typed; Ctrl-D on an empty line quits, as on
//! a router. Escape sequences (arrow keys, function keys) are swallowed: the
//! simulator keeps no history and no cursor movement within the line.

use std::time::SystemTime;

use crate::device::Device;
use crate::export;

/// Longest line kept; further characters are not echoed, so a runaway paste
/// cannot grow the buffer without bound.
const MAX_LINE: usize = 4096;

/// Where the input decoder is within an escape sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Escape {
    None,
    /// After ESC.
    Start,
    /// After `ESC [` or `ESC O`: parameters until a final byte.
    Sequence,
}

/// One shell's line editor.
#[derive(Debug)]
pub(crate) struct Shell {
    line: Vec<u8>,
    escape: Escape,
    /// The previous byte was `\r`, so a `\n` right after it is the same Enter.
    after_cr: bool,
}

/// What typing produced: bytes for the terminal and whether the session ends.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Output {
    pub(crate) bytes: Vec<u8>,
    pub(crate) quit: bool,
}

impl Shell {
    pub(crate) fn new() -> Self {
        Self {
            line: Vec::new(),
            escape: Escape::None,
            after_cr: false,
        }
    }

    /// The greeting and the first prompt.
    pub(crate) fn start(&self, dev: &Device) -> Vec<u8> {
        let mut out = format!(
            "\r\n\r\n  MikroTik RouterOS {} (simulated)\r\n\r\n",
            dev.profile.version.number
        )
        .into_bytes();
        out.extend_from_slice(prompt(dev).as_bytes());
        out
    }

    /// Feeds typed bytes and returns what the terminal shows in answer.
    pub(crate) fn input(&mut self, dev: &Device, data: &[u8]) -> Output {
        let mut out = Output::default();
        for &b in data {
            match self.escape {
                Escape::Start => {
                    self.escape = if b == b'[' || b == b'O' {
                        Escape::Sequence
                    } else {
                        Escape::None
                    };
                    continue;
                }
                Escape::Sequence => {
                    if (0x40..=0x7e).contains(&b) {
                        self.escape = Escape::None;
                    }
                    continue;
                }
                Escape::None => {}
            }
            let after_cr = std::mem::replace(&mut self.after_cr, b == b'\r');
            match b {
                0x1b => self.escape = Escape::Start,
                b'\r' | b'\n' => {
                    if b == b'\n' && after_cr {
                        continue;
                    }
                    let line = String::from_utf8_lossy(&std::mem::take(&mut self.line)).into_owned();
                    out.bytes.extend_from_slice(b"\r\n");
                    if run(dev, line.trim(), &mut out.bytes) {
                        out.quit = true;
                        return out;
                    }
                    out.bytes.extend_from_slice(prompt(dev).as_bytes());
                }
                0x7f | 0x08 if self.pop_char() => {
                    out.bytes.extend_from_slice(b"\x08 \x08");
                }
                0x03 => {
                    self.line.clear();
                    out.bytes.extend_from_slice(b"\r\n");
                    out.bytes.extend_from_slice(prompt(dev).as_bytes());
                }
                0x04 if self.line.is_empty() => {
                    out.bytes.extend_from_slice(b"\r\n");
                    out.quit = true;
                    return out;
                }
                0x20..=0x7e | 0x80..=0xff if self.line.len() < MAX_LINE => {
                    self.line.push(b);
                    out.bytes.push(b);
                }
                _ => {}
            }
        }
        out
    }

    /// Removes the last character (all bytes of a UTF-8 sequence).
    fn pop_char(&mut self) -> bool {
        let Some(mut b) = self.line.pop() else {
            return false;
        };
        // Continuation bytes are 10xxxxxx; stop after the lead byte.
        while b & 0xc0 == 0x80 {
            match self.line.pop() {
                Some(prev) => b = prev,
                None => break,
            }
        }
        true
    }
}

fn prompt(dev: &Device) -> String {
    let user = dev.state().user.clone();
    format!("[{user}@{}] > ", dev.profile.identity)
}

/// Runs one command line, writing its answer; `true` when it ends the session.
fn run(dev: &Device, line: &str, out: &mut Vec<u8>) -> bool {
    let words: Vec<&str> = line.split_whitespace().collect();
    match words.as_slice() {
        [] => false,
        ["/quit" | "quit"] => {
            out.extend_from_slice(b"interrupted\r\n");
            true
        }
        ["/system" | "system", "identity", "print"] => {
            out.extend_from_slice(format!("  name: {}\r\n", dev.profile.identity).as_bytes());
            false
        }
        _ => {
            let text = {
                let st = dev.state();
                match export::parse(line, dev.profile.version.major) {
                    Ok(req) => export::render(&dev.profile, &st.config_lines, req, SystemTime::now()),
                    Err(e) => format!("{}\r\n", e.0),
                }
            };
            out.extend_from_slice(text.as_bytes());
            false
        }
    }
}
