//! `outpost`: the administrator's and NOC engineer's command line.
//!
//! It starts with what an installer needs before enrolling an agent: reading an
//! enrollment token, to check out of band that the CA it pins is the
//! collector's (`outpost-collector init` prints the same fingerprint).
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use outpost_certs::token::EnrollmentToken;

/// Outpost command line.
#[derive(Debug, Parser)]
#[command(name = "outpost", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Enrollment tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Show a token's id and the CA fingerprint it pins (never the secret).
    Inspect {
        /// The token, as printed by `outpost-collector token create`.
        token: String,
    },
}

fn inspect(token: &str) -> Result<String, String> {
    let t: EnrollmentToken = token.parse().map_err(|e| format!("{e}"))?;
    Ok(format!(
        "token id:        {}\nCA fingerprint:  sha256:{}\n(compare the fingerprint with the one `outpost-collector init` printed)",
        t.id(),
        t.ca_fingerprint()
    ))
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Token {
            command: TokenCommand::Inspect { token },
        } => match inspect(&token) {
            Ok(text) => {
                println!("{text}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(2)
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use outpost_certs::Fingerprint;

    #[test]
    fn shows_id_and_fingerprint_but_not_the_secret() {
        let fp = Fingerprint::of_der(b"ca");
        let token = EnrollmentToken::generate(fp);
        let text = token.to_string();
        let secret = text.split('.').nth(2).expect("secret part");
        let shown = inspect(&text).expect("valid token");
        assert!(shown.contains(token.id()));
        assert!(shown.contains(&fp.to_string()));
        assert!(!shown.contains(secret));
    }

    #[test]
    fn names_what_is_wrong() {
        assert!(inspect("outpost1.zz.x.y").expect_err("bad").contains("id"));
    }
}
