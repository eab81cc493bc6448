//! The RouterOS simulator as a test fleet: `outpost-sim` as a real process on
//! loopback addresses, with ports chosen by the OS and its control port.
use std::io::{BufRead as _, BufReader, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::Duration;

use crate::{Process, bin};

/// One simulated device as the simulator announced it.
#[derive(Clone, Debug)]
pub struct SimDevice {
    /// Its loopback address.
    pub ip: String,
    /// API port.
    pub api_port: u16,
    /// API-SSL port.
    pub api_ssl_port: u16,
    /// SSH port, when the simulator serves SSH.
    pub ssh_port: Option<u16>,
    /// RouterOS version, e.g. `7.16.2`.
    pub ros: String,
    /// Identity.
    pub identity: String,
}

/// A running simulator.
pub struct Sim {
    process: Process,
    /// The devices, in address order.
    pub devices: Vec<SimDevice>,
    control: SocketAddr,
}

fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    line.split_whitespace().find_map(|w| w.strip_prefix(key))
}

impl Sim {
    /// Starts `devices` devices from `first_ip` (give each test its own
    /// 127.0.x range), RouterOS `ros` (`6`, `7` or `mixed`), user `admin`
    /// with password `password`.
    pub fn start(devices: usize, first_ip: &str, ros: &str, password: &str) -> Self {
        Self::start_seeded(devices, first_ip, ros, password, 1)
    }

    /// [`Sim::start`] with another seed (other boards and versions).
    pub fn start_seeded(devices: usize, first_ip: &str, ros: &str, password: &str, seed: u64) -> Self {
        Self::start_with(devices, first_ip, ros, password, seed, &[])
    }

    /// Devices announcing themselves over MNDP to `to` every second.
    pub fn start_announcing(devices: usize, first_ip: &str, to: std::net::SocketAddr) -> Self {
        let to = to.to_string();
        Self::start_with(
            devices,
            first_ip,
            "7",
            "sim-pass",
            1,
            &["--mndp-to", &to, "--mndp-interval", "1"],
        )
    }

    /// [`Sim::start_seeded`] with more `outpost-sim` arguments.
    pub fn start_with(devices: usize, first_ip: &str, ros: &str, password: &str, seed: u64, extra: &[&str]) -> Self {
        let mut cmd = Command::new(bin("outpost-sim"));
        cmd.args(extra);
        cmd.args(["--devices", &devices.to_string(), "--first-ip", first_ip, "--ros", ros])
            .args(["--seed", &seed.to_string()])
            .args(["--user", "admin", "--password", password])
            .args([
                "--api-port",
                "0",
                "--api-ssl-port",
                "0",
                "--ssh-port",
                "0",
                "--control",
                "127.0.0.1:0",
            ]);
        let process = Process::spawn(cmd);
        process.wait_log("ready ");
        let log = process.log();
        let devices = log
            .iter()
            .filter(|l| l.starts_with("device "))
            .map(|l| SimDevice {
                ip: l.split_whitespace().nth(1).expect("address").to_owned(),
                api_port: field(l, "api=").and_then(|p| p.parse().ok()).expect("api port"),
                api_ssl_port: field(l, "api-ssl=").and_then(|p| p.parse().ok()).expect("api-ssl port"),
                ssh_port: field(l, "ssh=").and_then(|p| p.parse().ok()),
                ros: field(l, "ros=").expect("version").to_owned(),
                identity: field(l, "identity=").expect("identity").to_owned(),
            })
            .collect();
        let control = log
            .iter()
            .find_map(|l| l.strip_prefix("control "))
            .and_then(|a| a.trim().parse().ok())
            .expect("control port line");
        Self {
            process,
            devices,
            control,
        }
    }

    /// Sends one control line (`drop 127.0.x.y`, `password …`, …) and
    /// returns the answer, which must be `ok`.
    pub fn control(&self, line: &str) {
        let mut s = TcpStream::connect(self.control).expect("connect to the control port");
        s.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
        writeln!(s, "{line}").expect("send control line");
        let mut answer = String::new();
        BufReader::new(&s).read_line(&mut answer).expect("control answer");
        assert_eq!(answer.trim(), "ok", "control {line:?} answered {answer:?}");
    }

    /// The simulator process.
    pub fn process(&self) -> &Process {
        &self.process
    }

    /// The first device whose RouterOS version starts with `prefix` (`6.`,
    /// `7.`, `7.18`).
    pub fn device_with(&self, prefix: &str) -> &SimDevice {
        self.devices
            .iter()
            .find(|d| d.ros.starts_with(prefix))
            .unwrap_or_else(|| panic!("no simulated device runs RouterOS {prefix}"))
    }
}
