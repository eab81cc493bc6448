//! The streaming parser behind [`super::parse`]: one pass over quick-xml
//! events, keeping only a stack of element kinds and the host and port being
//! read, so memory follows the output, not the document's size.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use quick_xml::errors::{Error as XmlError, IllFormedError, SyntaxError};
use quick_xml::events::{BytesStart, Event};
use quick_xml::{Reader, XmlVersion};

use super::{
    HostState, Hostname, HostnameKind, MAX_HOSTS, NmapHost, NmapPort, NmapScan, NmapXmlError, OsMatch, PortState,
    Position, Protocol,
};

/// Deepest nesting accepted; nmap's output is about six deep, scripts'
/// tables a few more.
const MAX_DEPTH: usize = 256;
/// Longest attribute value quoted back in an error.
const MAX_QUOTED: usize = 80;

/// Elements whose children are read; everything else is [`Elem::Other`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Elem {
    NmapRun,
    Host,
    Hostnames,
    Ports,
    Port,
    Os,
    Runstats,
    Other,
}

struct Parser<'x> {
    xml: &'x [u8],
    scan: NmapScan,
    stack: Vec<Elem>,
    root_seen: bool,
    host: Option<NmapHost>,
    port: Option<NmapPort>,
}

pub(super) fn parse(xml: &[u8]) -> Result<NmapScan, NmapXmlError> {
    // Text is not trimmed, so the position before an event is its `<`.
    let mut reader = Reader::from_reader(xml);
    let mut p = Parser {
        xml,
        scan: NmapScan::default(),
        stack: Vec::new(),
        root_seen: false,
        host: None,
        port: None,
    };
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let at = reader.buffer_position();
        let event = match reader.read_event_into(&mut buf) {
            Ok(event) => event,
            Err(e) if p.root_seen && cut_off(&e, xml, reader.error_position()) => {
                return Err(p.truncated());
            }
            Err(e) => {
                return Err(NmapXmlError::Malformed {
                    position: Position::locate(xml, reader.error_position()),
                    message: e.to_string(),
                });
            }
        };
        let done = match event {
            Event::Start(e) => p.open(&e, at, false)?,
            Event::Empty(e) => p.open(&e, at, true)?,
            Event::End(_) => match p.stack.pop() {
                Some(elem) => p.close(elem),
                None => false,
            },
            Event::Eof if p.root_seen => return Err(p.truncated()),
            Event::Eof => return Err(NmapXmlError::NoRoot),
            _ => false,
        };
        if done {
            return Ok(p.scan);
        }
    }
}

/// Whether an error means the input was cut off. Syntax errors are a tag,
/// comment, declaration or CDATA section left open at the end of input,
/// except that `<!` followed by nonsense and a dangling `&` can also occur
/// mid-document: those count only when no further markup follows.
fn cut_off(e: &XmlError, xml: &[u8], error_at: u64) -> bool {
    let markup_follows = || {
        let from = usize::try_from(error_at).unwrap_or(usize::MAX).saturating_add(1);
        xml.get(from..).is_some_and(|rest| rest.contains(&b'<'))
    };
    match e {
        XmlError::Syntax(SyntaxError::InvalidBangMarkup) | XmlError::IllFormed(IllFormedError::UnclosedReference) => {
            !markup_follows()
        }
        XmlError::Syntax(_) => true,
        _ => false,
    }
}

impl Parser<'_> {
    /// The refusal of a document that ends before `</nmaprun>`: where it
    /// ends, and how many hosts it held by then.
    fn truncated(self) -> NmapXmlError {
        NmapXmlError::Truncated {
            position: self.position(self.xml.len() as u64),
            hosts: self.scan.hosts.len(),
        }
    }

    fn position(&self, at: u64) -> Position {
        Position::locate(self.xml, at)
    }

    /// Handles an opening or self-closing tag; true when it closed the root.
    fn open(&mut self, e: &BytesStart<'_>, at: u64, empty: bool) -> Result<bool, NmapXmlError> {
        if self.stack.len() >= MAX_DEPTH {
            return Err(NmapXmlError::TooDeep {
                max: MAX_DEPTH,
                position: self.position(at),
            });
        }
        let parent = self.stack.last().copied();
        let name = e.name();
        let elem = match (parent, name.as_ref()) {
            (None, "nmaprun") => {
                self.root_seen = true;
                let tag = self.tag(e, "nmaprun", at)?;
                self.scan.args = tag.get("args");
                self.scan.started = tag.parse("start", "UNIX seconds", |v| v.parse::<i64>().ok())?;
                Elem::NmapRun
            }
            (None, other) => {
                return Err(NmapXmlError::WrongRoot {
                    found: quote(other),
                    position: self.position(at),
                });
            }
            (Some(Elem::NmapRun), "host") => {
                if self.scan.hosts.len() >= MAX_HOSTS {
                    return Err(NmapXmlError::TooManyHosts {
                        max: MAX_HOSTS,
                        position: self.position(at),
                    });
                }
                self.host = Some(NmapHost::default());
                Elem::Host
            }
            (Some(Elem::NmapRun), "runstats") => Elem::Runstats,
            (Some(Elem::Runstats), "finished") => {
                let tag = self.tag(e, "finished", at)?;
                self.scan.finished = tag.get("exit").as_deref() != Some("error");
                Elem::Other
            }
            (Some(Elem::Host), "status") => {
                let tag = self.tag(e, "status", at)?;
                let state = tag.required("state", "up, down, unknown or skipped", host_state)?;
                if let Some(h) = &mut self.host {
                    h.state = state;
                }
                Elem::Other
            }
            (Some(Elem::Host), "address") => {
                let tag = self.tag(e, "address", at)?;
                let addr = tag.require("addr")?;
                let kind = tag.get("addrtype");
                let vendor = tag.get("vendor");
                let h = self.host.get_or_insert_default();
                match kind.as_deref().unwrap_or("ipv4") {
                    "ipv4" => h.addresses.push(IpAddr::V4(
                        tag.check("addr", &addr, "an IPv4 address", |v| v.parse::<Ipv4Addr>().ok())?,
                    )),
                    "ipv6" => h
                        .addresses
                        .push(IpAddr::V6(tag.check("addr", &addr, "an IPv6 address", parse_ipv6)?)),
                    "mac" => {
                        let mac = tag.check("addr", &addr, "a MAC address", parse_mac)?;
                        // A host has one link-layer address; keep the first.
                        if h.mac.is_none() {
                            h.mac = Some(mac);
                            h.mac_vendor = vendor;
                        }
                    }
                    other => {
                        return Err(tag.invalid("addrtype", other, "ipv4, ipv6 or mac"));
                    }
                }
                Elem::Other
            }
            (Some(Elem::Host), "hostnames") => Elem::Hostnames,
            (Some(Elem::Hostnames), "hostname") => {
                let tag = self.tag(e, "hostname", at)?;
                let name = tag.require("name")?;
                let kind = tag.parse("type", "user or PTR", hostname_kind)?;
                self.host
                    .get_or_insert_default()
                    .hostnames
                    .push(Hostname { name, kind });
                Elem::Other
            }
            (Some(Elem::Host), "ports") => Elem::Ports,
            (Some(Elem::Ports), "port") => {
                let tag = self.tag(e, "port", at)?;
                let protocol = tag.required("protocol", "ip, tcp, udp or sctp", protocol)?;
                let port = tag.required("portid", "a port number (0-65535)", |v| v.parse::<u16>().ok())?;
                self.port = Some(NmapPort {
                    protocol,
                    port,
                    state: PortState::Unknown,
                    reason: None,
                    service: None,
                    product: None,
                    version: None,
                    extrainfo: None,
                });
                Elem::Port
            }
            (Some(Elem::Port), "state") => {
                let tag = self.tag(e, "state", at)?;
                let state = tag.required("state", "an nmap port state", port_state)?;
                if let Some(p) = &mut self.port {
                    p.state = state;
                    p.reason = tag.get("reason");
                }
                Elem::Other
            }
            (Some(Elem::Port), "service") => {
                let tag = self.tag(e, "service", at)?;
                if let Some(p) = &mut self.port {
                    p.service = tag.get("name");
                    p.product = tag.get("product");
                    p.version = tag.get("version");
                    p.extrainfo = tag.get("extrainfo");
                }
                Elem::Other
            }
            (Some(Elem::Host), "os") => Elem::Os,
            (Some(Elem::Os), "osmatch") => {
                let tag = self.tag(e, "osmatch", at)?;
                let name = tag.require("name")?;
                let accuracy = tag.required("accuracy", "a percentage (0-100)", |v| {
                    v.parse::<u8>().ok().filter(|&a| a <= 100)
                })?;
                self.host
                    .get_or_insert_default()
                    .os_matches
                    .push(OsMatch { name, accuracy });
                Elem::Other
            }
            _ => Elem::Other,
        };
        if empty {
            Ok(self.close(elem))
        } else {
            self.stack.push(elem);
            Ok(false)
        }
    }

    /// Handles the end of an element; true when it was the root.
    fn close(&mut self, elem: Elem) -> bool {
        match elem {
            Elem::NmapRun => return true,
            Elem::Host => {
                if let Some(h) = self.host.take() {
                    self.scan.hosts.push(h);
                }
            }
            Elem::Port => {
                if let Some(p) = self.port.take() {
                    self.host.get_or_insert_default().ports.push(p);
                }
            }
            _ => {}
        }
        false
    }

    /// Reads every attribute of a known element, unescaped, so a malformed
    /// one is reported even when not needed.
    fn tag(&self, e: &BytesStart<'_>, element: &'static str, at: u64) -> Result<Tag, NmapXmlError> {
        let malformed = |message: String| NmapXmlError::Malformed {
            position: self.position(at),
            message: format!("in <{element}>: {message}"),
        };
        let mut attrs = Vec::new();
        for attr in e.attributes() {
            let attr = attr.map_err(|e| malformed(e.to_string()))?;
            let value = attr
                .normalized_value(XmlVersion::Implicit1_0)
                .map_err(|e| malformed(e.to_string()))?;
            attrs.push((attr.key.as_ref().to_owned(), value.into_owned()));
        }
        Ok(Tag {
            element,
            position: self.position(at),
            attrs,
        })
    }
}

/// A known element's attributes, with what errors about them need.
struct Tag {
    element: &'static str,
    position: Position,
    attrs: Vec<(String, String)>,
}

impl Tag {
    fn get(&self, name: &str) -> Option<String> {
        self.attrs.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    }

    fn require(&self, name: &'static str) -> Result<String, NmapXmlError> {
        self.get(name).ok_or(NmapXmlError::MissingAttribute {
            element: self.element,
            attribute: name,
            position: self.position,
        })
    }

    fn invalid(&self, attribute: &'static str, value: &str, expected: &'static str) -> NmapXmlError {
        NmapXmlError::InvalidAttribute {
            element: self.element,
            attribute,
            value: quote(value),
            expected,
            position: self.position,
        }
    }

    fn check<T>(
        &self,
        attribute: &'static str,
        value: &str,
        expected: &'static str,
        f: impl FnOnce(&str) -> Option<T>,
    ) -> Result<T, NmapXmlError> {
        f(value).ok_or_else(|| self.invalid(attribute, value, expected))
    }

    /// An optional attribute that must parse when present.
    fn parse<T>(
        &self,
        attribute: &'static str,
        expected: &'static str,
        f: impl FnOnce(&str) -> Option<T>,
    ) -> Result<Option<T>, NmapXmlError> {
        self.get(attribute)
            .map(|v| self.check(attribute, &v, expected, f))
            .transpose()
    }

    fn required<T>(
        &self,
        attribute: &'static str,
        expected: &'static str,
        f: impl FnOnce(&str) -> Option<T>,
    ) -> Result<T, NmapXmlError> {
        let value = self.require(attribute)?;
        self.check(attribute, &value, expected, f)
    }
}

/// At most [`MAX_QUOTED`] characters of `s`, for error messages.
fn quote(s: &str) -> String {
    match s.char_indices().nth(MAX_QUOTED) {
        Some((end, _)) => format!("{}…", &s[..end]),
        None => s.to_owned(),
    }
}

fn host_state(v: &str) -> Option<HostState> {
    Some(match v {
        "up" => HostState::Up,
        "down" => HostState::Down,
        "unknown" => HostState::Unknown,
        "skipped" => HostState::Skipped,
        _ => return None,
    })
}

fn hostname_kind(v: &str) -> Option<HostnameKind> {
    Some(match v {
        "user" => HostnameKind::User,
        "PTR" => HostnameKind::Ptr,
        _ => return None,
    })
}

fn protocol(v: &str) -> Option<Protocol> {
    Some(match v {
        "ip" => Protocol::Ip,
        "tcp" => Protocol::Tcp,
        "udp" => Protocol::Udp,
        "sctp" => Protocol::Sctp,
        _ => return None,
    })
}

fn port_state(v: &str) -> Option<PortState> {
    Some(match v {
        "open" => PortState::Open,
        "closed" => PortState::Closed,
        "filtered" => PortState::Filtered,
        "unfiltered" => PortState::Unfiltered,
        "open|filtered" => PortState::OpenFiltered,
        "closed|filtered" => PortState::ClosedFiltered,
        "unknown" => PortState::Unknown,
        _ => return None,
    })
}

/// nmap writes a link-local target with its zone (`fe80::1%eth0`); the zone
/// names an interface of the scanning host, not part of the address.
fn parse_ipv6(v: &str) -> Option<Ipv6Addr> {
    v.split('%').next()?.parse().ok()
}

/// `00:0C:29:AB:CD:EF`, either case.
fn parse_mac(v: &str) -> Option<[u8; 6]> {
    let mut out = [0u8; 6];
    let mut parts = v.split(':');
    for byte in &mut out {
        let part = parts.next()?;
        // from_str_radix alone would take a sign, e.g. "+1".
        if part.len() != 2 || !part.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        *byte = u8::from_str_radix(part, 16).ok()?;
    }
    parts.next().is_none().then_some(out)
}
