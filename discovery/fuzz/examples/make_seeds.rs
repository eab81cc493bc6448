//! Writes the seed corpora of this crate's fuzz targets, under `seeds/<target>/`
//! beside its Cargo.toml:
//!
//!     cargo run --example make_seeds
//!
//! * `mndp`: announcements as RouterOS 6 and 7 send them (every field, and a
//!   short one), the refresh request, one with an unknown TLV type and a
//!   non-UTF-8 identity, and one cut in the middle of a TLV.
//! * `nmap_xml`: the fixtures of `discovery/tests/fixtures/nmap` (a whole
//!   scan, one stopped by SIGINT, malformed XML, another root element) and a
//!   minimal self-closing document.
//!
//! Running it again replaces them.
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use outpost_discovery::mndp::{Announcement, REFRESH_REQUEST, encode};

fn write(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join(name), bytes)
}

fn main() -> std::io::Result<()> {
    let fuzz = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let seeds = fuzz.join("seeds");

    let mndp = seeds.join("mndp");
    let v7 = Announcement {
        seq: 1,
        mac: Some([0x4C, 0x5E, 0x0C, 0x11, 0x22, 0x33]),
        identity: Some("edge-0001".into()),
        version: Some("7.16.2 (stable)".into()),
        platform: Some("MikroTik".into()),
        uptime_secs: Some(86_400),
        software_id: Some("ABCD-1234".into()),
        board: Some("RB5009UG+S+".into()),
        unpack: Some(0),
        // A fixed, valid literal: parsing it cannot fail.
        ipv6: Some("fe80::4e5e:cff:fe11:2233".parse().expect("a literal IPv6 address")),
        interface: Some("ether1".into()),
        ipv4: Some(Ipv4Addr::new(192, 168, 88, 1)),
    };
    let full = encode(&v7);
    write(&mndp, "v7-full.bin", &full)?;
    let v6 = Announcement {
        seq: 513,
        mac: Some([0xD4, 0xCA, 0x6D, 0x01, 0x02, 0x03]),
        identity: Some("MikroTik".into()),
        version: Some("6.49.10".into()),
        platform: Some("MikroTik".into()),
        uptime_secs: Some(12),
        board: Some("hAP ac^2".into()),
        interface: Some("bridge".into()),
        ..Announcement::default()
    };
    write(&mndp, "v6-short.bin", &encode(&v6))?;
    write(&mndp, "refresh.bin", &REFRESH_REQUEST)?;
    let mut odd = encode(&Announcement {
        seq: 2,
        ..Announcement::default()
    });
    odd.extend_from_slice(&[0x00, 0x63, 0x00, 0x02, 0xAB, 0xCD]); // unknown type 99
    odd.extend_from_slice(&[0x00, 0x05, 0x00, 0x03, b'r', 0xFF, b'1']); // identity, not UTF-8
    write(&mndp, "unknown-type-and-latin1.bin", &odd)?;
    write(&mndp, "truncated.bin", &full[..full.len() - 3])?;

    let nmap = seeds.join("nmap_xml");
    let fixtures = fuzz.join("../tests/fixtures/nmap");
    for name in ["full.xml", "sigint.xml", "malformed.xml", "wrong_root.xml"] {
        write(&nmap, name, &std::fs::read(fixtures.join(name))?)?;
    }
    write(
        &nmap,
        "minimal.xml",
        b"<nmaprun start=\"1\"><host><status state=\"up\"/><address addr=\"127.0.0.1\"/></host><runstats><finished/></runstats></nmaprun>",
    )?;
    Ok(())
}
