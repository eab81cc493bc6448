//! Generates the MAC vendor table (`src/oui.rs`) from the IEEE registry CSVs
//! that Debian's `ieee-data` package installs: `oui.csv` (MA-L, 24-bit
//! prefixes), `mam.csv` (MA-M, 28-bit) and `oui36.csv` (MA-S, 36-bit), read
//! from `$OUTPOST_IEEE_DATA_DIR` (default `/usr/share/ieee-data`).
//!
//! Output in `$OUT_DIR`, the layout `src/oui.rs` reads:
//! - `oui_names.txt`: every vendor name once, each followed by `\n`;
//! - `oui_24.bin`, `oui_28.bin`, `oui_36.bin`: records sorted by prefix, each
//!   the prefix big-endian in 3, 4 or 5 bytes, then the byte offset of its
//!   name in `oui_names.txt` as 3 bytes big-endian.
//!
//! Only names are kept (addresses are most of the CSVs' size). Left out:
//! blocks registered as `Private` (the owner asked to stay unnamed), and MA-L
//! blocks of the IEEE Registration Authority itself, which holds them to hand
//! out MA-M/MA-S/IAB sub-blocks and so is never the maker of a device.

use std::collections::{BTreeMap, HashMap};
use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

const DIR_VAR: &str = "OUTPOST_IEEE_DATA_DIR";
const DEFAULT_DIR: &str = "/usr/share/ieee-data";
const HEADER: [&str; 4] = ["Registry", "Assignment", "Organization Name", "Organization Address"];
/// Name offsets are 3 bytes.
const MAX_OFFSET: u32 = 0xFF_FFFF;

/// One registry file: name and prefix length in bits.
const FILES: [(&str, u32); 3] = [("oui.csv", 24), ("mam.csv", 28), ("oui36.csv", 36)];

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: outpost-discovery build: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    println!("cargo::rerun-if-env-changed={DIR_VAR}");
    println!("cargo::rerun-if-changed=build.rs");
    let dir = env::var_os(DIR_VAR).map_or_else(|| PathBuf::from(DEFAULT_DIR), PathBuf::from);
    println!("cargo::rerun-if-changed={}", dir.display());
    let out = PathBuf::from(env::var_os("OUT_DIR").ok_or("OUT_DIR is not set (not run by cargo?)")?);

    let mut names = Names::default();
    for (file, bits) in FILES {
        let path = dir.join(file);
        println!("cargo::rerun-if-changed={}", path.display());
        let table = read_registry(&path, bits, &mut names)?;
        let width = (bits as usize).div_ceil(8);
        let mut bytes = Vec::with_capacity(table.len() * (width + 3));
        for (prefix, offset) in table {
            bytes.extend_from_slice(&prefix.to_be_bytes()[8 - width..]);
            bytes.extend_from_slice(&offset.to_be_bytes()[1..]);
        }
        write(&out.join(format!("oui_{bits}.bin")), &bytes)?;
    }
    write(&out.join("oui_names.txt"), names.text.as_bytes())
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), String> {
    fs::write(path, bytes).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Vendor names, each stored once.
#[derive(Default)]
struct Names {
    text: String,
    offsets: HashMap<String, u32>,
}

impl Names {
    fn offset(&mut self, name: &str) -> Result<u32, String> {
        if let Some(&o) = self.offsets.get(name) {
            return Ok(o);
        }
        let o = u32::try_from(self.text.len())
            .ok()
            .filter(|&o| o <= MAX_OFFSET)
            .ok_or("vendor names exceed the 16 MiB a 3-byte offset addresses")?;
        self.text.push_str(name);
        self.text.push('\n');
        self.offsets.insert(name.to_owned(), o);
        Ok(o)
    }
}

/// Prefix → name offset for one file. When a prefix is listed twice (a few
/// old MA-L blocks are), the first listing wins.
fn read_registry(path: &Path, bits: u32, names: &mut Names) -> Result<BTreeMap<u64, u32>, String> {
    let bytes = fs::read(path).map_err(|e| {
        format!(
            "cannot read the IEEE registry file {}: {e}. Install it with `apt-get install ieee-data` \
             (Debian/Ubuntu; scripts/install-deps does), or set {DIR_VAR} to a directory holding \
             oui.csv, mam.csv and oui36.csv in the same format",
            path.display()
        )
    })?;
    let text = String::from_utf8_lossy(&bytes);
    let records = parse_csv(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut rows = records.into_iter();
    match rows.next() {
        Some((_, header)) if header == HEADER => {}
        other => {
            return Err(format!(
                "{}: expected the header `{}`, found {:?}",
                path.display(),
                HEADER.join(","),
                other.map(|(_, h)| h)
            ));
        }
    }
    let digits = (bits / 4) as usize;
    let mut table = BTreeMap::new();
    for (line, fields) in rows {
        if fields.iter().all(|f| f.is_empty()) {
            continue;
        }
        let at = || format!("{}:{line}", path.display());
        let [_, assignment, name, ..] = fields.as_slice() else {
            return Err(format!("{}: fewer than 3 fields", at()));
        };
        if assignment.len() != digits {
            return Err(format!(
                "{}: assignment {assignment:?} is not {digits} hex digits",
                at()
            ));
        }
        let prefix = u64::from_str_radix(assignment, 16)
            .map_err(|_| format!("{}: assignment {assignment:?} is not hex", at()))?;
        let name = clean(name);
        if name.is_empty() || name == "Private" || name.eq_ignore_ascii_case("IEEE Registration Authority") {
            continue;
        }
        if let std::collections::btree_map::Entry::Vacant(e) = table.entry(prefix) {
            e.insert(names.offset(&name)?);
        }
    }
    Ok(table)
}

/// One line per name, no stray whitespace.
fn clean(name: &str) -> String {
    name.split(|c: char| c.is_control() || c.is_whitespace())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// RFC 4180 CSV: comma-separated fields, double quotes around fields that
/// hold commas, quotes (doubled) or line breaks, CRLF or LF between records.
/// Returns each record with the line it starts on.
fn parse_csv(text: &str) -> Result<Vec<(usize, Vec<String>)>, String> {
    let mut records = Vec::new();
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut line = 1;
    let mut record_line = 1;
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\n' {
            line += 1;
        }
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') if field.is_empty() => quoted = true,
            (false, ',') => fields.push(std::mem::take(&mut field)),
            (false, '\r') if chars.peek() == Some(&'\n') => {}
            (false, '\n') => {
                fields.push(std::mem::take(&mut field));
                records.push((record_line, std::mem::take(&mut fields)));
                record_line = line;
            }
            (false, c) => field.push(c),
        }
    }
    if quoted {
        return Err(format!("quoted field starting before line {line} is never closed"));
    }
    if !field.is_empty() || !fields.is_empty() {
        fields.push(field);
        records.push((record_line, fields));
    }
    Ok(records)
}
