//! The faults and changes a fleet accepts, as parsed from a control line
//! (`slow 127.0.1.5 250`) or built by tests.
use std::net::Ipv4Addr;
use std::str::FromStr;
use std::time::Duration;

/// What `counter` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CounterOp {
    /// Jump close to `u64::MAX` so the counter rolls over shortly.
    Wrap,
    /// Back to zero, as after a reboot.
    Reset,
}

/// One control operation.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Op {
    /// Delay every reply.
    Slow(Ipv4Addr, Duration),
    /// Close open connections.
    Drop(Ipv4Addr),
    /// `!fatal` on open connections.
    Fatal(Ipv4Addr),
    /// This command path answers `!trap`.
    Trap(Ipv4Addr, String),
    /// This command path answers `!empty`.
    Empty(Ipv4Addr, String),
    /// Replies are preceded by this reply word.
    UnknownWord(Ipv4Addr, String),
    /// New API password.
    Password(Ipv4Addr, String),
    /// Pre-6.43 login.
    LegacyLogin(Ipv4Addr, bool),
    /// No `api` policy.
    NoApiPolicy(Ipv4Addr, bool),
    /// New API-SSL certificate.
    RotateCert(Ipv4Addr),
    /// New SSH host key.
    RotateHostKey(Ipv4Addr),
    /// Stop listening.
    Down(Ipv4Addr),
    /// Listen again.
    Up(Ipv4Addr),
    /// Append a config line.
    Config(Ipv4Addr, String),
    /// Move an interface's counters.
    Counter(Ipv4Addr, String, CounterOp),
    /// Reboot.
    Reboot(Ipv4Addr),
    /// Remove faults.
    Clear(Ipv4Addr),
}

impl Op {
    /// The device the operation is for.
    pub fn ip(&self) -> Ipv4Addr {
        match self {
            Op::Slow(ip, _)
            | Op::Drop(ip)
            | Op::Fatal(ip)
            | Op::Trap(ip, _)
            | Op::Empty(ip, _)
            | Op::UnknownWord(ip, _)
            | Op::Password(ip, _)
            | Op::LegacyLogin(ip, _)
            | Op::NoApiPolicy(ip, _)
            | Op::RotateCert(ip)
            | Op::RotateHostKey(ip)
            | Op::Down(ip)
            | Op::Up(ip)
            | Op::Config(ip, _)
            | Op::Counter(ip, _, _)
            | Op::Reboot(ip)
            | Op::Clear(ip) => *ip,
        }
    }
}

fn on_off(s: &str) -> Result<bool, String> {
    match s {
        "on" => Ok(true),
        "off" => Ok(false),
        _ => Err(format!("expected on or off, not {s:?}")),
    }
}

impl FromStr for Op {
    type Err = String;

    fn from_str(line: &str) -> Result<Self, String> {
        let line = line.trim();
        let (verb, rest) = line.split_once(' ').unwrap_or((line, ""));
        let (ip, arg) = rest.trim_start().split_once(' ').unwrap_or((rest.trim(), ""));
        if verb.is_empty() {
            return Err("empty command".to_owned());
        }
        let ip: Ipv4Addr = ip
            .parse()
            .map_err(|_| format!("{verb}: expected a device address, got {ip:?}"))?;
        let arg = arg.trim();
        let need = |what: &str| -> Result<String, String> {
            if arg.is_empty() {
                Err(format!("{verb}: missing {what}"))
            } else {
                Ok(arg.to_owned())
            }
        };
        let none = |op: Op| -> Result<Op, String> {
            if arg.is_empty() {
                Ok(op)
            } else {
                Err(format!("{verb}: unexpected {arg:?}"))
            }
        };
        match verb {
            "slow" => {
                let ms: u64 = need("milliseconds")?
                    .parse()
                    .map_err(|_| format!("slow: {arg:?} is not a number of milliseconds"))?;
                Ok(Op::Slow(ip, Duration::from_millis(ms.min(3_600_000))))
            }
            "drop" => none(Op::Drop(ip)),
            "fatal" => none(Op::Fatal(ip)),
            "trap" => Ok(Op::Trap(ip, need("command path")?)),
            "empty" => Ok(Op::Empty(ip, need("command path")?)),
            "unknown-word" => Ok(Op::UnknownWord(ip, need("reply word")?)),
            "password" => Ok(Op::Password(ip, need("password")?)),
            "legacy-login" => Ok(Op::LegacyLogin(ip, on_off(arg)?)),
            "no-api-policy" => Ok(Op::NoApiPolicy(ip, on_off(arg)?)),
            "rotate-cert" => none(Op::RotateCert(ip)),
            "rotate-host-key" => none(Op::RotateHostKey(ip)),
            "down" => none(Op::Down(ip)),
            "up" => none(Op::Up(ip)),
            "config" => Ok(Op::Config(ip, need("config line")?)),
            "counter" => {
                let (iface, what) = arg
                    .split_once(' ')
                    .ok_or_else(|| "counter: expected <iface> wrap|reset".to_owned())?;
                let what = match what.trim() {
                    "wrap" => CounterOp::Wrap,
                    "reset" => CounterOp::Reset,
                    other => return Err(format!("counter: expected wrap or reset, not {other:?}")),
                };
                Ok(Op::Counter(ip, iface.to_owned(), what))
            }
            "reboot" => none(Op::Reboot(ip)),
            "clear" => none(Op::Clear(ip)),
            other => Err(format!("unknown command {other:?}")),
        }
    }
}
