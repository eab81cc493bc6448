//! `outpost`: the administrator's and NOC engineer's command line, over the
//! collector's public API (`outpost.api.v1`, on the console's HTTPS port).
//!
//! `outpost login` pins the collector's CA by fingerprint (as an agent's
//! enrollment token does) and keeps the credential in the user's
//! configuration directory ([`credentials`]); every later command reuses both.
//! Tables for people, `--json` for scripts.
use std::io::{IsTerminal as _, Read as _};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use outpost_certs::token::EnrollmentToken;

mod commands;
mod connect;
mod credentials;
mod table;
mod tunnel;

/// Outpost command line.
#[derive(Debug, Parser)]
#[command(name = "outpost", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// `--json` on listing commands.
#[derive(Debug, Args, Clone, Copy)]
pub(crate) struct Output {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub(crate) json: bool,
}

/// Narrowing a listing.
#[derive(Debug, Args, Clone, Default)]
pub(crate) struct Filter {
    /// Only this tenant's (id).
    #[arg(long)]
    pub(crate) tenant: Option<String>,
    /// Only this site's (id).
    #[arg(long)]
    pub(crate) site: Option<String>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Sign in to a collector and keep the credential for later commands.
    ///
    /// With an API token (from OUTPOST_API_TOKEN, or standard input with
    /// --token-stdin), or a user name and password (OUTPOST_PASSWORD, or a
    /// prompt) plus the second factor when the account has one.
    Login {
        /// The collector's console port, HOST:PORT.
        collector: String,
        /// SHA-256 fingerprint of the collector's CA (`outpost-collector init`
        /// printed it; `outpost token inspect` shows it for an enrollment token).
        #[arg(long, env = "OUTPOST_CA_FINGERPRINT")]
        ca_fingerprint: String,
        /// Sign in as this user instead of with an API token.
        #[arg(long)]
        user: Option<String>,
        /// The TOTP code or a recovery code (asked for when needed and not given).
        #[arg(long, env = "OUTPOST_TOTP_CODE")]
        code: Option<String>,
        /// Read the API token from standard input.
        #[arg(long, conflicts_with = "user")]
        token_stdin: bool,
    },
    /// Forget the saved credential (and end the session it opened).
    Logout,
    /// Who the saved credential is.
    Whoami {
        #[command(flatten)]
        out: Output,
    },
    /// Tenants.
    Tenants {
        #[command(subcommand)]
        command: ListOnly,
    },
    /// Sites.
    Sites {
        #[command(subcommand)]
        command: ListOnly,
    },
    /// Agents.
    Agents {
        #[command(subcommand)]
        command: ListOnly,
    },
    /// Managed RouterOS devices.
    Devices {
        #[command(subcommand)]
        command: ListOnly,
    },
    /// Discovered hosts.
    Hosts {
        #[command(subcommand)]
        command: HostsCommand,
    },
    /// One agent.
    Agent {
        #[command(subcommand)]
        command: AgentCommand,
    },
    /// Enrollment tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// The audit log.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// API tokens for programs.
    ApiToken {
        #[command(subcommand)]
        command: ApiTokenCommand,
    },
    /// Forward a local port to a port of a device, through the collector and
    /// the agent that polls the device (operators and admins of its tenant).
    ///
    /// Prints `listening on ADDRESS` once ready; point WinBox, ssh, scp or a
    /// browser there. Every connection is audited on the collector.
    Tunnel {
        /// The device: its id, identity or address.
        device: String,
        /// winbox, ssh, telnet, http, https, api, api-ssl, or a port number.
        port: String,
        /// Local address to listen on (port 0: any free port).
        #[arg(long, default_value = "127.0.0.1:0")]
        local: std::net::SocketAddr,
    },
}

#[derive(Debug, Subcommand)]
enum ListOnly {
    /// List them.
    List {
        #[command(flatten)]
        filter: Filter,
        #[command(flatten)]
        out: Output,
    },
}

#[derive(Debug, Subcommand)]
enum HostsCommand {
    /// List them.
    List {
        #[command(flatten)]
        filter: Filter,
        /// Hosts declared gone too.
        #[arg(long)]
        gone: bool,
        #[command(flatten)]
        out: Output,
    },
}

#[derive(Debug, Subcommand)]
enum AgentCommand {
    /// Revoke an agent: refused at its next connection, for good.
    Revoke {
        /// The agent's id.
        id: String,
    },
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Make an enrollment token for a site (needs the tenant's admin role).
    Create {
        /// The site's id (`outpost sites list`).
        #[arg(long)]
        site: String,
        /// How long it stays valid (e.g. 30m, 24h, 7d).
        #[arg(long, default_value = "24h", value_parser = parse_duration_secs)]
        ttl: i64,
    },
    /// Show a token's id and the CA fingerprint it pins (never the secret).
    Inspect {
        /// The token, as printed by `outpost token create`.
        token: String,
    },
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// The records of a time range as CSV (RFC 4180) on standard output.
    Export {
        /// Start (RFC 3339, e.g. 2025-01-31T00:00:00Z), inclusive.
        #[arg(long)]
        from: String,
        /// End (RFC 3339), exclusive; now when omitted.
        #[arg(long)]
        to: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum ApiTokenCommand {
    /// Make an API token; it is printed once.
    Create {
        /// A label ("psa-sync").
        #[arg(long)]
        name: String,
        /// read, operate or admin (capped by your own role).
        #[arg(long, default_value = "read")]
        scope: String,
        /// The tenant it is bound to; MSP-wide when omitted (MSP administrators).
        #[arg(long)]
        tenant: Option<String>,
        /// How long it stays valid (e.g. 30d); 90 days when omitted.
        #[arg(long, value_parser = parse_duration_secs)]
        ttl: Option<i64>,
    },
    /// List the tokens you administer.
    List {
        /// Only this tenant's.
        #[arg(long)]
        tenant: Option<String>,
        #[command(flatten)]
        out: Output,
    },
    /// Revoke a token by its id.
    Revoke {
        /// The token's id.
        id: String,
    },
}

/// `90s`, `30m`, `24h`, `7d`, `2w` as seconds.
fn parse_duration_secs(s: &str) -> Result<i64, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: i64 = n
        .parse()
        .map_err(|_| format!("invalid duration {s:?}: expected e.g. 90s, 30m, 24h, 7d"))?;
    let unit_secs = match unit {
        "s" | "" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return Err(format!("invalid duration unit {unit:?} in {s:?}: use s, m, h, d or w")),
    };
    match n.checked_mul(unit_secs) {
        Some(v) if v > 0 => Ok(v),
        _ => Err(format!("invalid duration {s:?}: must be positive")),
    }
}

fn inspect(token: &str) -> Result<String> {
    let t: EnrollmentToken = token.parse().map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(format!(
        "token id:        {}\nCA fingerprint:  sha256:{}\n(compare the fingerprint with the one `outpost-collector init` printed)",
        t.id(),
        t.ca_fingerprint()
    ))
}

/// The API token for `login`: standard input or OUTPOST_API_TOKEN.
fn api_token(from_stdin: bool) -> Result<String> {
    let token = if from_stdin {
        let mut s = String::new();
        std::io::stdin()
            .take(4_096)
            .read_to_string(&mut s)
            .context("reading the token from standard input")?;
        s
    } else {
        match std::env::var("OUTPOST_API_TOKEN") {
            Ok(t) => t,
            Err(_) => bail!("give an API token (OUTPOST_API_TOKEN or --token-stdin) or sign in with --user NAME"),
        }
    };
    let token = token.trim().to_owned();
    if token.is_empty() {
        bail!("the API token is empty");
    }
    Ok(token)
}

fn password(user: &str) -> Result<String> {
    if let Ok(p) = std::env::var("OUTPOST_PASSWORD") {
        return Ok(p);
    }
    if !std::io::stdin().is_terminal() {
        bail!("no password: set OUTPOST_PASSWORD or run interactively");
    }
    rpassword::prompt_password(format!("password for {user}: ")).context("reading the password")
}

async fn run(command: Command) -> Result<()> {
    let dir = credentials::dir()?;
    match command {
        Command::Token {
            command: TokenCommand::Inspect { token },
        } => {
            println!("{}", inspect(&token)?);
            Ok(())
        }
        Command::Login {
            collector,
            ca_fingerprint,
            user,
            code,
            token_stdin,
        } => {
            let login = match user {
                Some(user) => {
                    let password = password(&user)?;
                    commands::Login::Password { user, password, code }
                }
                None => commands::Login::Token(api_token(token_stdin)?),
            };
            commands::login(&dir, &collector, &ca_fingerprint, login).await
        }
        Command::Logout => commands::logout(&dir).await,
        Command::Tunnel { device, port, local } => {
            let port = tunnel::port_of(&port)?;
            tunnel::run(commands::api(&dir).await?, &device, port, local).await
        }
        Command::Whoami { out } => commands::whoami(&dir, out).await,
        Command::Tenants {
            command: ListOnly::List { out, .. },
        } => commands::tenants(&dir, out).await,
        Command::Sites {
            command: ListOnly::List { filter, out },
        } => commands::sites(&dir, &filter, out).await,
        Command::Agents {
            command: ListOnly::List { filter, out },
        } => commands::agents(&dir, &filter, out).await,
        Command::Devices {
            command: ListOnly::List { filter, out },
        } => commands::devices(&dir, &filter, out).await,
        Command::Hosts {
            command: HostsCommand::List { filter, gone, out },
        } => commands::hosts(&dir, &filter, gone, out).await,
        Command::Agent {
            command: AgentCommand::Revoke { id },
        } => commands::revoke_agent(&dir, &id).await,
        Command::Token {
            command: TokenCommand::Create { site, ttl },
        } => commands::enrollment_token(&dir, &site, ttl).await,
        Command::Audit {
            command: AuditCommand::Export { from, to },
        } => commands::audit_export(&dir, &from, to.as_deref()).await,
        Command::ApiToken { command } => match command {
            ApiTokenCommand::Create {
                name,
                scope,
                tenant,
                ttl,
            } => commands::create_api_token(&dir, &name, &scope, tenant.as_deref(), ttl.unwrap_or(0)).await,
            ApiTokenCommand::List { tenant, out } => commands::api_tokens(&dir, tenant.as_deref(), out).await,
            ApiTokenCommand::Revoke { id } => commands::revoke_api_token(&dir, &id).await,
        },
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: starting: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units_and_refuse_nonsense() {
        assert_eq!(parse_duration_secs("90s"), Ok(90));
        assert_eq!(parse_duration_secs("24h"), Ok(86_400));
        assert_eq!(parse_duration_secs("2w"), Ok(1_209_600));
        for bad in ["", "h", "0h", "5y", "-1h", "99999999999999999999d"] {
            assert!(parse_duration_secs(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_command_line_is_well_formed() {
        use clap::CommandFactory as _;
        Cli::command().debug_assert();
    }
}
