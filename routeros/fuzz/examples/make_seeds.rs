//! Writes the seed corpora of this crate's fuzz targets, under `seeds/<target>/`
//! beside its Cargo.toml:
//!
//!     cargo run --example make_seeds
//!
//! * `decode_sentence`: reply streams a router sends (rows, `!done` with a
//!   login challenge, `!trap` with category, `!fatal`, 7.18's `!empty`, an
//!   unknown word), a word long enough for a 2-byte length prefix, and bytes
//!   cut in the middle of a sentence.
//! * `values`: the value formats RouterOS prints, one file each, and rows of
//!   `key=value` lines for the command parsers.
//!
//! Running it again replaces them.
use std::path::{Path, PathBuf};

use outpost_routeros::frame::encode_sentence;

fn write(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join(name), bytes)
}

fn main() -> std::io::Result<()> {
    let seeds = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("seeds");

    let sentences = seeds.join("decode_sentence");
    let mut rows = encode_sentence(&["!re", "=.id=*1", "=name=ether1", "=rx-byte=123456", ".tag=3"]);
    rows.extend(encode_sentence(&["!re", "=comment=a=b", ".tag=3"]));
    rows.extend(encode_sentence(&["!done", ".tag=3"]));
    write(&sentences, "rows.bin", &rows)?;
    write(
        &sentences,
        "challenge.bin",
        &encode_sentence(&["!done", "=ret=00112233445566778899aabbccddeeff"]),
    )?;
    let mut trap = encode_sentence(&["!trap", "=category=0", "=message=no such command prefix", ".tag=7"]);
    trap.extend(encode_sentence(&["!done", ".tag=7"]));
    write(&sentences, "trap.bin", &trap)?;
    write(
        &sentences,
        "fatal.bin",
        &encode_sentence(&["!fatal", "session terminated on request"]),
    )?;
    let mut empty = encode_sentence(&["!empty", ".tag=5"]);
    empty.extend(encode_sentence(&["!done", ".tag=5"]));
    empty.extend(encode_sentence(&["!foo", "=x=y"]));
    write(&sentences, "empty-and-unknown.bin", &empty)?;
    let long = format!("=message={}", "x".repeat(300));
    write(&sentences, "long-word.bin", &encode_sentence(&["!re", long.as_str()]))?;
    write(&sentences, "truncated.bin", &rows[..rows.len() / 2])?;

    let values = seeds.join("values");
    for (name, text) in [
        ("uptime", "42d14h23m15s"),
        ("uptime-weeks", "3w2d"),
        ("uptime-clock", "1w2d03:04:05"),
        ("millis", "1s200ms"),
        ("version", "7.16.2 (stable)"),
        ("version-beta", "7.18beta4"),
        ("signal", "-80@5GHz-Ce/a/ac/an"),
        ("rate", "866.6Mbps-80MHz/2S"),
        ("pair", "123456,789012"),
        ("count", "15.2MiB"),
        ("date", "2026-09-22 20:42:21"),
        ("date-old", "sep/22/2026 20:42:21"),
        (
            "fingerprint",
            "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        ),
        (
            "rows",
            "name=cpu-temperature\nvalue=48\ntype=C\n\n.id=*1F\ntime=20:42:21\ntopics=system,info\nmessage=hi\n\nbytes=1,2\nsignal-strength=-67@HT40",
        ),
    ] {
        write(&values, &format!("{name}.txt"), text.as_bytes())?;
    }
    Ok(())
}
