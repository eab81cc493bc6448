//! Why an nmap XML document was refused, and where in it.

use std::fmt;
use std::path::PathBuf;

/// A place in the input: byte offset, and the line and column it falls on
/// (both from 1; the column counts bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// Bytes from the start of the input.
    pub offset: u64,
    /// Line number.
    pub line: u64,
    /// Byte within the line.
    pub column: u64,
}

impl Position {
    /// Locates `offset` in `input`. Only called on errors, so counting lines
    /// from the start costs nothing in a successful import.
    pub(crate) fn locate(input: &[u8], offset: u64) -> Self {
        let end = usize::try_from(offset).unwrap_or(usize::MAX).min(input.len());
        let before = &input[..end];
        let line = before.iter().filter(|&&b| b == b'\n').count() as u64 + 1;
        let line_start = before.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        Self {
            offset,
            line,
            column: (end - line_start) as u64 + 1,
        }
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "byte {} (line {}, column {})", self.offset, self.line, self.column)
    }
}

/// Why an nmap XML import failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NmapXmlError {
    /// The input is over [`super::MAX_INPUT_BYTES`].
    #[error("nmap XML input is larger than the {max}-byte limit")]
    TooLarge {
        /// The limit.
        max: usize,
    },
    /// The file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The input is not well-formed XML.
    #[error("malformed XML at {position}: {message}")]
    Malformed {
        /// Where the parser stopped.
        position: Position,
        /// What was wrong.
        message: String,
    },
    /// The input ends before `</nmaprun>`: nmap was stopped or died, or
    /// the file is still being written.
    #[error(
        "the nmap XML ends at {position} before </nmaprun> (after {hosts} complete hosts): the scan was stopped or \
         nmap died, or the file is still being written; nothing was imported"
    )]
    Truncated {
        /// The end of the input.
        position: Position,
        /// Hosts complete before the cut.
        hosts: usize,
    },
    /// The document element is not `<nmaprun>`.
    #[error("not nmap XML output: the document element at {position} is <{found}>, not <nmaprun>")]
    WrongRoot {
        /// The element found.
        found: String,
        /// Where it starts.
        position: Position,
    },
    /// The input ended before any element.
    #[error("not nmap XML output: the input ends before an <nmaprun> element")]
    NoRoot,
    /// A required attribute is missing.
    #[error("<{element}> at {position} has no {attribute} attribute")]
    MissingAttribute {
        /// Element name.
        element: &'static str,
        /// Attribute name.
        attribute: &'static str,
        /// Where the element starts.
        position: Position,
    },
    /// An attribute's value does not parse.
    #[error("<{element}> at {position}: {attribute}=\"{value}\" is not {expected}")]
    InvalidAttribute {
        /// Element name.
        element: &'static str,
        /// Attribute name.
        attribute: &'static str,
        /// The value (cut to 80 characters).
        value: String,
        /// What the value should be.
        expected: &'static str,
        /// Where the element starts.
        position: Position,
    },
    /// More than [`super::MAX_HOSTS`] hosts.
    #[error("more than {max} hosts (the one at {position} is over the limit): import smaller scans")]
    TooManyHosts {
        /// The limit.
        max: usize,
        /// Where the first host over the limit starts.
        position: Position,
    },
    /// Elements nested deeper than nmap ever writes.
    #[error("elements nested more than {max} deep at {position}")]
    TooDeep {
        /// The limit.
        max: usize,
        /// Where the element too deep starts.
        position: Position,
    },
}
