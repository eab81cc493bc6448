//! Command dispatch: which menu a command word reaches and what it answers.
//! Print commands return rows (filtered and projected by the connection
//! layer); streaming commands return a [`Outcome::Stream`] that the
//! connection layer drives until it ends or is cancelled.

use crate::catalog::RosMajor;
use crate::data::{self, Now, Row};
use crate::device::Device;
use crate::request::Request;

/// What a command answers.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// `!re` per row (after query and `.proplist`), then `!done`.
    Rows(Vec<Row>),
    /// `!trap` (with a category when given), then `!done`.
    Trap { message: String, category: Option<u8> },
    /// A stream of `!re` until cancelled.
    Stream(Stream),
}

/// Streaming commands.
#[derive(Debug)]
pub(crate) enum Stream {
    /// One row per listed interface every second; one round only with `once`.
    MonitorTraffic { ifaces: Vec<usize>, once: bool },
    /// New log lines as they are written.
    LogListen,
    /// All interfaces again whenever their state changes.
    InterfaceListen,
}

pub(crate) const NO_SUCH_COMMAND: &str = "no such command prefix";

fn trap(message: &str) -> Outcome {
    Outcome::Trap {
        message: message.to_owned(),
        category: None,
    }
}

/// `getall` is the old name of `print` and still accepted.
fn print_menu(command: &str) -> Option<&str> {
    command
        .strip_suffix("/print")
        .or_else(|| command.strip_suffix("/getall"))
}

pub(crate) fn dispatch(dev: &Device, req: &Request) -> Outcome {
    let now = Now::get();
    let major = dev.profile.version.major;
    if let Some(menu) = print_menu(&req.command) {
        let rows = {
            let mut st = dev.state();
            match menu {
                "/system/resource" => data::resource(dev, &st, now),
                "/system/identity" => data::identity(dev),
                "/system/routerboard" => match data::routerboard(dev) {
                    Some(rows) => rows,
                    None => return trap(NO_SUCH_COMMAND),
                },
                "/system/health" => data::health(dev, now),
                "/system/package/update" => data::package_update(dev),
                "/interface" => data::interfaces(dev, &st, now),
                "/ip/address" => data::addresses(dev),
                "/ip/neighbor" => data::neighbors(dev, &st, now),
                "/ip/dhcp-server/lease" => data::leases(dev, now),
                "/interface/wireless/registration-table" if major == RosMajor::V6 => {
                    data::v6::registration_table(dev, &st, now)
                }
                "/interface/wifi/registration-table" if major == RosMajor::V7 => {
                    data::v7::registration_table(dev, &st, now)
                }
                "/log" => {
                    dev.catch_up_log(&mut st, now.mono, now.wall);
                    data::log(dev, &st, now)
                }
                _ => return trap(NO_SUCH_COMMAND),
            }
        };
        return Outcome::Rows(rows);
    }
    match req.command.as_str() {
        "/interface/monitor-traffic" => monitor_traffic(dev, req),
        "/log/listen" => Outcome::Stream(Stream::LogListen),
        "/interface/listen" => Outcome::Stream(Stream::InterfaceListen),
        "/system/identity/set" | "/system/reboot" => trap("not allowed (9)"),
        _ => trap(NO_SUCH_COMMAND),
    }
}

fn monitor_traffic(dev: &Device, req: &Request) -> Outcome {
    let Some(list) = req.attr("interface") else {
        return trap("missing value(s) of argument(s) interface");
    };
    let mut ifaces = Vec::new();
    for name in list.split(',').filter(|n| !n.is_empty()) {
        match dev.profile.ifaces.iter().position(|i| i.name == name) {
            Some(i) if !ifaces.contains(&i) => ifaces.push(i),
            Some(_) => {}
            None => return trap("no such item"),
        }
    }
    if ifaces.is_empty() {
        return trap("no such item");
    }
    Outcome::Stream(Stream::MonitorTraffic {
        ifaces,
        once: req.attr("once").is_some(),
    })
}
