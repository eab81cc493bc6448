use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::*;

const FULL: &str = include_str!("../../tests/fixtures/nmap/full.xml");
const SIGINT: &str = include_str!("../../tests/fixtures/nmap/sigint.xml");
const MALFORMED: &str = include_str!("../../tests/fixtures/nmap/malformed.xml");
const WRONG_ROOT: &str = include_str!("../../tests/fixtures/nmap/wrong_root.xml");

fn ok(xml: &str) -> NmapScan {
    match parse(xml.as_bytes()) {
        Ok(scan) => scan,
        Err(e) => panic!("{e}"),
    }
}

fn err(xml: &str) -> NmapXmlError {
    match parse(xml.as_bytes()) {
        Ok(scan) => panic!("parsed: {scan:?}"),
        Err(e) => e,
    }
}

/// A document with one host holding `inner`.
fn host(inner: &str) -> String {
    format!("<nmaprun start=\"1\">\n<host>{inner}</host>\n</nmaprun>\n")
}

#[test]
fn reads_a_whole_scan() {
    let scan = ok(FULL);
    assert!(scan.finished);
    assert_eq!(
        scan.args.as_deref(),
        Some("nmap -sS -sV -O --top-ports 100 -oX full.xml 192.168.88.0/24"),
        "&#45; unescaped"
    );
    assert_eq!(scan.started, Some(1_773_151_331));
    assert_eq!(scan.hosts.len(), 4, "hosthint is not a host");

    let router = &scan.hosts[0];
    assert_eq!(router.state, HostState::Up);
    assert_eq!(router.addresses, vec![IpAddr::V4(Ipv4Addr::new(192, 168, 88, 1))]);
    assert_eq!(router.mac, Some([0x4C, 0x5E, 0x0C, 0x12, 0x34, 0x56]));
    assert_eq!(router.mac_vendor.as_deref(), Some("Routerboard.com"));
    assert_eq!(
        router.hostnames,
        vec![
            Hostname {
                name: "router.lan".into(),
                kind: Some(HostnameKind::User)
            },
            Hostname {
                name: "gw.example.net".into(),
                kind: Some(HostnameKind::Ptr)
            },
        ]
    );
    assert_eq!(
        router.ports.iter().map(|p| p.port).collect::<Vec<_>>(),
        vec![22, 53, 80, 8291],
        "extraports are not ports"
    );
    assert_eq!(
        router.ports[0],
        NmapPort {
            protocol: Protocol::Tcp,
            port: 22,
            state: PortState::Open,
            reason: Some("syn-ack".into()),
            service: Some("ssh".into()),
            product: Some("MikroTik RouterOS sshd".into()),
            version: None,
            extrainfo: Some("protocol 2.0".into()),
        }
    );
    assert_eq!(router.ports[3].state, PortState::Filtered);
    assert_eq!(
        router.os_matches,
        vec![
            OsMatch {
                name: "MikroTik RouterOS 6.45 - 7.5 (Linux 5.6.3)".into(),
                accuracy: 98
            },
            OsMatch {
                name: "Linux 2.6.32 - 3.10".into(),
                accuracy: 91
            },
        ]
    );

    let pi = &scan.hosts[1];
    assert_eq!(pi.mac, Some([0xB8, 0x27, 0xEB, 0xAA, 0xBB, 0xCC]), "lower-case MAC");
    assert_eq!(pi.mac_vendor, None);
    assert!(pi.hostnames.is_empty());
    assert_eq!(pi.ports[0].protocol, Protocol::Udp);
    assert_eq!(pi.ports[0].state, PortState::OpenFiltered);
    assert_eq!(pi.ports[1].state, PortState::Closed, "<state> with an end tag");
    assert_eq!(pi.ports[1].service, None);

    let down = &scan.hosts[2];
    assert_eq!(down.state, HostState::Down);
    assert!(down.ports.is_empty() && down.os_matches.is_empty());

    let printer = &scan.hosts[3];
    assert_eq!(
        printer.addresses,
        vec![
            IpAddr::V6("2001:db8::5".parse::<Ipv6Addr>().unwrap()),
            IpAddr::V6("fe80::1".parse::<Ipv6Addr>().unwrap()),
        ],
        "zone dropped"
    );
    assert_eq!(printer.hostnames[0].name, "printer & scanner.lan");
    assert_eq!(printer.ports[0].version.as_deref(), Some("2.1"));
    assert_eq!(printer.ports[0].extrainfo.as_deref(), Some("firmware \"X\""));
}

#[test]
fn a_scan_stopped_by_sigint_is_refused_with_where_it_ends() {
    let e = err(SIGINT);
    let NmapXmlError::Truncated { position, hosts } = &e else {
        panic!("{e}");
    };
    assert_eq!(position.offset, SIGINT.len() as u64, "the end of the input");
    assert_eq!(
        position.line,
        SIGINT.lines().count() as u64 + u64::from(SIGINT.ends_with('\n'))
    );
    assert_eq!(*hosts, 1, "the host being written is not counted");
    let text = e.to_string();
    assert!(
        text.contains(&format!("line {}", position.line)) && text.contains("nothing was imported"),
        "{text}"
    );
}

#[test]
fn a_cut_anywhere_after_the_root_starts_is_refused_with_its_position() {
    let root = FULL.find("<nmaprun").unwrap();
    let root_end = root + FULL[root..].find('>').unwrap() + 1;
    let end = FULL.find("</nmaprun>").unwrap();
    for cut in root_end..end + "</nmaprun>".len() {
        match parse(&FULL.as_bytes()[..cut]) {
            Err(NmapXmlError::Truncated { position, .. }) => {
                assert_eq!(position.offset, cut as u64, "cut at {cut}")
            }
            // A cut inside a value can leave a well-formed tag with a value
            // that does not parse; still refused, with its place.
            Err(e @ (NmapXmlError::InvalidAttribute { .. } | NmapXmlError::Malformed { .. })) => {
                assert!(e.to_string().contains("line "), "cut at {cut}: {e}")
            }
            Err(e) => panic!("cut at {cut}: {e}"),
            Ok(scan) => panic!("cut at {cut} accepted with {} hosts", scan.hosts.len()),
        }
    }
    assert!(parse(FULL.as_bytes()).is_ok());
}

#[test]
fn a_cut_inside_the_root_tag_is_an_error() {
    let root = FULL.find("<nmaprun").unwrap();
    let e = parse(&FULL.as_bytes()[..root + 20]).unwrap_err();
    assert!(matches!(e, NmapXmlError::Malformed { .. }), "{e}");
    assert!(matches!(parse(&FULL.as_bytes()[..root]), Err(NmapXmlError::NoRoot)));
}

#[test]
fn malformed_xml_says_where() {
    let e = err(MALFORMED);
    let NmapXmlError::Malformed { position, message } = &e else {
        panic!("{e}");
    };
    assert_eq!(position.line, 6, "{e}");
    assert_eq!(position.offset, MALFORMED.find("</ports>").unwrap() as u64, "{e}");
    assert!(message.contains("port"), "{e}");
    assert!(e.to_string().starts_with("malformed XML at byte "), "{e}");
}

#[test]
fn another_root_is_not_nmap_output() {
    let e = err(WRONG_ROOT);
    let NmapXmlError::WrongRoot { found, position } = &e else {
        panic!("{e}");
    };
    assert_eq!(found, "report");
    assert_eq!(position.line, 3);
    assert_eq!(position.column, 1);
    assert!(matches!(err(""), NmapXmlError::NoRoot));
    assert!(matches!(
        err("<?xml version=\"1.0\"?>\n<!-- nothing -->\n"),
        NmapXmlError::NoRoot
    ));
}

#[test]
fn invalid_attribute_values_name_element_attribute_and_place() {
    let e = err(&host(
        "<ports><port protocol=\"tcp\" portid=\"abc\"><state state=\"open\"/></port></ports>",
    ));
    assert_eq!(
        e.to_string(),
        "<port> at byte 33 (line 2, column 14): portid=\"abc\" is not a port number (0-65535)"
    );
    let e = err(&host("<address addr=\"zz\" addrtype=\"ipv4\"/>"));
    assert!(
        matches!(&e, NmapXmlError::InvalidAttribute { element: "address", attribute: "addr", value, .. } if value == "zz"),
        "{e}"
    );
    let e = err(&host("<address addr=\"zz\"/>"));
    assert!(
        matches!(e, NmapXmlError::InvalidAttribute { attribute: "addr", .. }),
        "ipv4 is the default: {e}"
    );
    let e = err(&host("<address addr=\"1.2.3.4\" addrtype=\"ipx\"/>"));
    assert!(
        matches!(
            e,
            NmapXmlError::InvalidAttribute {
                attribute: "addrtype",
                ..
            }
        ),
        "{e}"
    );
    for mac in [
        "00:11:22:33:44",
        "00:11:22:33:44:55:66",
        "+0:11:22:33:44:55",
        "0011.2233.4455",
    ] {
        let e = err(&host(&format!("<address addr=\"{mac}\" addrtype=\"mac\"/>")));
        assert!(
            matches!(e, NmapXmlError::InvalidAttribute { attribute: "addr", .. }),
            "{mac}: {e}"
        );
    }
    let e = err(&host("<ports><port protocol=\"tcp\" portid=\"70000\"/></ports>"));
    assert!(
        matches!(
            e,
            NmapXmlError::InvalidAttribute {
                attribute: "portid",
                ..
            }
        ),
        "{e}"
    );
    let e = err(&host("<ports><port protocol=\"icmp\" portid=\"1\"/></ports>"));
    assert!(
        matches!(
            e,
            NmapXmlError::InvalidAttribute {
                attribute: "protocol",
                ..
            }
        ),
        "{e}"
    );
    let e = err(&host(
        "<ports><port protocol=\"tcp\" portid=\"1\"><state state=\"ajar\"/></port></ports>",
    ));
    assert!(
        matches!(e, NmapXmlError::InvalidAttribute { element: "state", .. }),
        "{e}"
    );
    let e = err(&host("<status state=\"sideways\"/>"));
    assert!(
        matches!(e, NmapXmlError::InvalidAttribute { element: "status", .. }),
        "{e}"
    );
    let e = err(&host("<os><osmatch name=\"x\" accuracy=\"101\"/></os>"));
    assert!(
        matches!(
            e,
            NmapXmlError::InvalidAttribute {
                attribute: "accuracy",
                ..
            }
        ),
        "{e}"
    );
    let e = err(&host("<hostnames><hostname name=\"x\" type=\"dns\"/></hostnames>"));
    assert!(
        matches!(e, NmapXmlError::InvalidAttribute { attribute: "type", .. }),
        "{e}"
    );
    let e = err("<nmaprun start=\"yesterday\"></nmaprun>");
    assert!(
        matches!(e, NmapXmlError::InvalidAttribute { element: "nmaprun", .. }),
        "{e}"
    );
}

#[test]
fn long_values_are_cut_in_errors() {
    let e = err(&host(&format!("<address addr=\"{}\"/>", "é".repeat(200))));
    let NmapXmlError::InvalidAttribute { value, .. } = e else {
        panic!("{e}");
    };
    assert_eq!(value.chars().count(), 81);
    assert!(value.ends_with('…'));
}

#[test]
fn missing_required_attributes_are_errors() {
    let e = err(&host("<ports><port protocol=\"tcp\"/></ports>"));
    assert!(
        matches!(
            e,
            NmapXmlError::MissingAttribute {
                element: "port",
                attribute: "portid",
                ..
            }
        ),
        "{e}"
    );
    let e = err(&host("<address addrtype=\"ipv4\"/>"));
    assert!(
        matches!(e, NmapXmlError::MissingAttribute { attribute: "addr", .. }),
        "{e}"
    );
    let e = err(&host("<os><osmatch accuracy=\"9\"/></os>"));
    assert!(
        matches!(e, NmapXmlError::MissingAttribute { attribute: "name", .. }),
        "{e}"
    );
}

#[test]
fn malformed_attributes_and_entities_are_xml_errors() {
    let e = err(&host("<address addr=\"1.2.3.4\" addr=\"1.2.3.5\"/>"));
    assert!(matches!(e, NmapXmlError::Malformed { .. }), "duplicate attribute: {e}");
    let e = err(&host("<address addr=\"&bogus;\"/>"));
    assert!(matches!(e, NmapXmlError::Malformed { .. }), "unknown entity: {e}");
    assert!(e.to_string().contains("in <address>"), "{e}");
}

#[test]
fn markup_errors_that_also_occur_mid_document_are_not_taken_for_a_cut() {
    for xml in ["<nmaprun><!x><host/></nmaprun>", "<nmaprun>a & b<host/></nmaprun>"] {
        assert!(matches!(err(xml), NmapXmlError::Malformed { .. }), "{xml}");
    }
    for xml in ["<nmaprun><host/><!", "<nmaprun><host/>a &am"] {
        assert!(
            matches!(err(xml), NmapXmlError::Truncated { hosts: 1, .. }),
            "{xml}: {}",
            err(xml)
        );
    }
}

#[test]
fn unknown_elements_are_skipped_at_any_depth() {
    let scan = ok(&host(
        "<status state=\"up\"/><address addr=\"10.0.0.1\"/>\
         <hostscript><script id=\"x\"><table><elem key=\"port\">22</elem><port protocol=\"tcp\" portid=\"nonsense\"/></table></script></hostscript>\
         <trace><hop ttl=\"1\" ipaddr=\"10.0.0.1\"/></trace>",
    ));
    assert_eq!(scan.hosts.len(), 1);
    assert!(scan.hosts[0].ports.is_empty(), "a <port> outside <ports> is not a port");
}

#[test]
fn self_closing_root_and_hosts() {
    let scan = ok("<nmaprun/>");
    assert!(!scan.finished && scan.hosts.is_empty());
    let scan = ok("<nmaprun><host/><host></host></nmaprun>");
    assert_eq!(scan.hosts, vec![NmapHost::default(), NmapHost::default()]);
}

#[test]
fn a_failed_run_is_not_finished() {
    let scan = ok("<nmaprun><runstats><finished exit=\"error\" errormsg=\"x\"/></runstats></nmaprun>");
    assert!(!scan.finished);
    let scan = ok("<nmaprun><runstats><finished time=\"1\"/></runstats></nmaprun>");
    assert!(scan.finished, "nmap before 7.x wrote no exit attribute");
}

#[test]
fn limits() {
    let mut many = String::from("<nmaprun>");
    many.push_str(&"<host/>".repeat(MAX_HOSTS + 1));
    many.push_str("</nmaprun>");
    let e = err(&many);
    assert!(matches!(e, NmapXmlError::TooManyHosts { max: MAX_HOSTS, .. }), "{e}");

    let deep = format!("<nmaprun>{}", "<a>".repeat(300));
    let e = err(&deep);
    assert!(matches!(e, NmapXmlError::TooDeep { max: 256, .. }), "{e}");

    let big = vec![b' '; MAX_INPUT_BYTES + 1];
    assert!(matches!(parse(&big), Err(NmapXmlError::TooLarge { .. })));
}

#[test]
fn read_file_reads_and_names_the_file() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/nmap");
    assert_eq!(read_file(&dir.join("full.xml")).unwrap(), ok(FULL));
    let missing = dir.join("missing.xml");
    let e = read_file(&missing).unwrap_err();
    assert!(
        e.to_string()
            .starts_with(&format!("cannot read {}: ", missing.display())),
        "{e}"
    );
}

#[test]
fn positions_count_lines_and_columns() {
    let p = Position::locate(b"ab\ncd\nef", 4);
    assert_eq!((p.offset, p.line, p.column), (4, 2, 2));
    let p = Position::locate(b"ab", 99);
    assert_eq!((p.line, p.column), (1, 3));
}

proptest::proptest! {
    #[test]
    fn garbage_never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
        let _ = parse(&bytes);
    }

    #[test]
    fn mangled_scans_never_panic(cut in 0..FULL.len(), at in 0..FULL.len(), byte in proptest::prelude::any::<u8>()) {
        let mut xml = FULL.as_bytes()[..cut].to_vec();
        if let Some(b) = xml.get_mut(at) {
            *b = byte;
        }
        let _ = parse(&xml);
    }
}
