//! A real OpenSSH server (Debian's `sshd`) on a loopback address, for
//! tunnels to reach and for `ssh -L` to compare against.
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};

use crate::{OutputExt, Process, wait_for};

/// A real sshd, stopped when dropped.
pub struct Sshd {
    process: Process,
    /// Where it listens.
    pub port: u16,
    dir: tempfile::TempDir,
}

pub fn keygen(path: &Path) {
    Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(path)
        .stdin(Stdio::null())
        .output()
        .expect("run ssh-keygen (Debian package openssh-client)")
        .ok();
}

impl Sshd {
    /// Starts one on `ip` (any free port) that lets its own client key in.
    pub fn start(ip: &str) -> Self {
        let dir = tempfile::tempdir().expect("sshd dir");
        let d = dir.path();
        keygen(&d.join("host"));
        keygen(&d.join("client"));
        std::fs::copy(d.join("client.pub"), d.join("authorized_keys")).expect("authorized_keys");
        // Privilege separation needs this directory; Debian makes it at boot.
        std::fs::create_dir_all("/run/sshd").expect("/run/sshd");
        let port = TcpListener::bind((ip, 0))
            .expect("free port")
            .local_addr()
            .expect("addr")
            .port();
        let conf = format!(
            "Port {port}\nListenAddress {ip}\nHostKey {d}/host\nPidFile {d}/sshd.pid\n\
             AuthorizedKeysFile {d}/authorized_keys\nPermitRootLogin prohibit-password\n\
             PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n\
             Subsystem sftp internal-sftp\nLogLevel ERROR\n",
            d = d.display()
        );
        std::fs::write(d.join("sshd_config"), conf).expect("sshd_config");
        let mut cmd = Command::new("/usr/sbin/sshd");
        cmd.args(["-D", "-e", "-f"]).arg(d.join("sshd_config"));
        let process = Process::spawn(cmd);
        wait_for("sshd to listen", || TcpStream::connect((ip, port)).ok());
        Self { process, port, dir }
    }

    /// `ssh`/`scp` options that log in with the client key and trust any host key.
    /// The listening daemon's pid (sessions run in its children).
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    pub fn client_args(&self) -> Vec<String> {
        let key = self.dir.path().join("client");
        [
            "-F",
            "/dev/null",
            "-i",
            &key.display().to_string(),
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "BatchMode=yes",
            "-o",
            "LogLevel=ERROR",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect()
    }
}

/// The current user's name, whom the client key logs in as.
pub fn user() -> String {
    let out = Command::new("id").arg("-un").output().expect("run id").ok();
    out.stdout_text().trim().to_owned()
}
