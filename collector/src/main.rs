use std::process::ExitCode;

use clap::Parser;
use outpost_collector::cli::{
    AdminCommand, AgentCommand, ApiTokenCommand, AuditCommand, CertCommand, Cli, Command, DeviceCommand,
    DiscoveryCommand, DiscoveryJobCommand, DiscoveryProfileCommand, SiteCommand, TokenCommand, UserCommand,
};
use outpost_collector::data_dir::DataDir;
use outpost_collector::serve::{ServeOptions, check_console_transport, serve};
use outpost_collector::{
    api_token_commands, audit_commands, commands, device_commands, device_import, discovery_commands, logging,
    user_commands,
};
use tokio_util::sync::CancellationToken;

fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init(&cli.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.is::<UsageError>() => {
            eprintln!("error: {e}");
            ExitCode::from(USAGE_EXIT_CODE)
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The exit code of a command line that cannot work, as clap uses for its own.
const USAGE_EXIT_CODE: u8 = 2;

/// Options that parse but do not go together.
#[derive(Debug)]
struct UsageError(String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Init { location, sans } => commands::init(&location, &sans).await.map(drop),
        Command::Serve(args) => {
            let console_transport = args.console_transport();
            if let Err(message) = check_console_transport(&console_transport, args.console_addr) {
                return Err(UsageError(message).into());
            }
            let shutdown = CancellationToken::new();
            logging::cancel_on_signal(shutdown.clone());
            let secure_cookies = true;
            serve(
                ServeOptions {
                    metrics_retention: args.metrics_retention(),
                    tunnel_policy: args.tunnel_policy(),
                    data_dir: DataDir::new(args.location.data_dir),
                    database_url: args.location.database_url,
                    agent_addr: args.agent_addr,
                    console_addr: args.console_addr,
                    agent_cert_lifetime: args.agent_cert_lifetime,
                    secure_cookies,
                    console_transport,
                    trusted_proxies: args.trusted_proxies,
                    metrics_token: args.metrics_token,
                },
                shutdown,
                None,
            )
            .await
        }
        Command::Token {
            command:
                TokenCommand::Create {
                    location,
                    tenant,
                    site,
                    ttl,
                },
        } => commands::token_create(&location, &tenant, &site, ttl).await.map(drop),
        Command::Agent {
            command: AgentCommand::List { location, json },
        } => commands::agent_list(&location, json).await,
        Command::Agent {
            command: AgentCommand::Revoke { location, id },
        } => commands::agent_revoke(&location, &id).await,
        Command::Site {
            command: SiteCommand::Delete { location, tenant, site },
        } => commands::site_delete(&location, &tenant, &site).await,
        Command::Device { command } => match command {
            DeviceCommand::Add {
                location,
                tenant,
                site,
                address,
                user,
                tls,
                port,
                ssh_port,
                interval,
            } => {
                let spec = device_commands::DeviceSpec {
                    tenant,
                    site,
                    address,
                    user,
                    tls,
                    port,
                    ssh_port,
                    interval,
                };
                let password = device_commands::ros_password()?;
                device_commands::device_add(&location, &spec, &password).await
            }
            DeviceCommand::Import {
                location,
                tenant,
                site,
                file,
            } => device_import::device_import(&location, &tenant, &site, &file).await,
            DeviceCommand::List { location, json } => device_commands::device_list(&location, json).await,
            DeviceCommand::Delete { location, id } => device_commands::device_delete(&location, &id).await,
            DeviceCommand::AcceptCertificate { location, id } => {
                device_commands::device_accept_certificate(&location, &id).await
            }
            DeviceCommand::AcceptHostKey { location, id } => {
                device_commands::device_accept_host_key(&location, &id).await
            }
        },
        Command::Discovery { command } => discovery(command).await,
        Command::Cert {
            command: CertCommand::Renew { data_dir, sans },
        } => commands::cert_renew(&data_dir, &sans),
        Command::Cert {
            command: CertCommand::Fingerprint { data_dir },
        } => DataDir::new(data_dir)
            .load_ca()
            .map(|ca| println!("sha256:{}", ca.fingerprint())),
        Command::ApiToken { command } => match command {
            ApiTokenCommand::Create {
                location,
                user,
                tenant,
                scope,
                name,
                ttl,
            } => api_token_commands::create(
                &location,
                &user,
                tenant.as_deref(),
                &scope,
                &name,
                ttl.map(|d| d.as_secs()),
            )
            .await
            .map(drop),
            ApiTokenCommand::List { location, json } => api_token_commands::list(&location, json).await,
            ApiTokenCommand::Revoke { location, id } => api_token_commands::revoke(&location, &id).await,
        },
        Command::User { command } => match command {
            UserCommand::Add {
                location,
                username,
                tenant,
                role,
                msp_admin,
            } => user_commands::add(&location, &username, tenant.as_deref(), &role, msp_admin)
                .await
                .map(drop),
            UserCommand::List { location, json } => user_commands::list(&location, json).await,
            UserCommand::Role {
                location,
                username,
                tenant,
                role,
            } => user_commands::role(&location, &username, &tenant, &role).await,
            UserCommand::Remove { location, username } => user_commands::remove(&location, &username).await,
        },
        Command::Admin {
            command: AdminCommand::ResetPassword { location, username },
        } => commands::admin_reset_password(&location, &username).await.map(drop),
        Command::Audit { command } => match command {
            AuditCommand::Verify { location } => audit_commands::verify(&location).await,
            AuditCommand::Export {
                location,
                from,
                to,
                tenant,
            } => audit_commands::export(&location, &from, &to, tenant.as_deref()).await,
        },
        #[cfg(feature = "quickstart")]
        Command::Quickstart {
            data_dir,
            agent_addr,
            console_addr,
            no_demo,
            demo_devices,
        } => {
            let demo = if no_demo { 0 } else { usize::from(demo_devices) };
            outpost_collector::quickstart::run(&data_dir, agent_addr, console_addr, demo).await
        }
    }
}

async fn discovery(command: DiscoveryCommand) -> anyhow::Result<()> {
    match command {
        DiscoveryCommand::Job { command } => match command {
            DiscoveryJobCommand::Add {
                location,
                tenant,
                site,
                targets,
                ports,
                rate,
                interval,
                snmp_community,
                snmp_v3,
            } => {
                let v3 = *snmp_v3;
                let v3 = match v3.snmp_v3_user {
                    None => None,
                    Some(user) => Some(discovery_commands::V3Spec::read(
                        user,
                        v3.snmp_v3_auth,
                        v3.snmp_v3_auth_password_file.as_deref(),
                        v3.snmp_v3_priv,
                        v3.snmp_v3_priv_password_file.as_deref(),
                    )?),
                };
                let spec = discovery_commands::JobSpec {
                    tenant,
                    site,
                    targets,
                    ports,
                    rate,
                    interval,
                    community: snmp_community,
                    v3,
                };
                discovery_commands::job_add(&location, &spec).await
            }
            DiscoveryJobCommand::List { location, json } => discovery_commands::job_list(&location, json).await,
            DiscoveryJobCommand::Delete { location, id } => discovery_commands::job_delete(&location, &id).await,
        },
        DiscoveryCommand::Hosts {
            location,
            tenant,
            adoptable,
            json,
        } => discovery_commands::hosts(&location, tenant.as_deref(), adoptable, json).await,
        DiscoveryCommand::Profile {
            command:
                DiscoveryProfileCommand::Set {
                    location,
                    tenant,
                    site,
                    user,
                },
        } => {
            let password = device_commands::ros_password()?;
            discovery_commands::profile_set(&location, &tenant, &site, &user, &password).await
        }
        DiscoveryCommand::Adopt { location, id } => discovery_commands::adopt(&location, &id).await,
    }
}
