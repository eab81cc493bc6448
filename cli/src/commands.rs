//! What each command asks the API, and how it shows the answer.
use std::io::IsTerminal as _;
use std::path::Path;

use anyhow::{Context, Result, bail};
use outpost_proto::api_v1 as pb;
use outpost_proto::api_v1::agent_service_client::AgentServiceClient;
use outpost_proto::api_v1::api_token_service_client::ApiTokenServiceClient;
use outpost_proto::api_v1::device_service_client::DeviceServiceClient;
use outpost_proto::api_v1::inventory_service_client::InventoryServiceClient;
use outpost_proto::api_v1::session_service_client::SessionServiceClient;
use outpost_proto::api_v1::tenant_service_client::TenantServiceClient;
use serde_json::json;

use crate::connect::{Api, connect, status};
use crate::credentials::{self, Credentials};
use crate::table::{self, time};
use crate::{Filter, Output};

/// How to sign in.
pub(crate) enum Login {
    /// With an API token.
    Token(String),
    /// With a password, and a second factor when the account has one.
    Password {
        user: String,
        password: String,
        code: Option<String>,
    },
}

pub(crate) async fn api(dir: &Path) -> Result<Api> {
    let c = credentials::load(dir)?;
    let channel = connect(&c.collector, &c.ca_fingerprint)
        .await
        .with_context(|| format!("connecting to {}", c.collector))?;
    Ok(Api::new(channel, c.token))
}

fn role_name(role: i32) -> &'static str {
    match pb::Role::try_from(role) {
        Ok(pb::Role::Viewer) => "viewer",
        Ok(pb::Role::Operator) => "operator",
        Ok(pb::Role::Admin) => "admin",
        _ => "?",
    }
}

pub(crate) async fn login(dir: &Path, collector: &str, ca_fingerprint: &str, how: Login) -> Result<()> {
    let channel = connect(collector, ca_fingerprint)
        .await
        .with_context(|| format!("connecting to {collector}"))?;
    let (kind, token) = match how {
        Login::Token(token) => ("api_token", token),
        Login::Password { user, password, code } => {
            let mut sessions = SessionServiceClient::new(channel.clone());
            let mut ask = pb::LoginRequest {
                username: user.clone(),
                password,
                second_factor: code.clone().unwrap_or_default(),
            };
            let answer = match sessions.login(ask.clone()).await {
                Err(s) if s.code() == tonic::Code::FailedPrecondition && code.is_none() => {
                    if !std::io::stdin().is_terminal() {
                        bail!("{}: give it with --code (or OUTPOST_TOTP_CODE)", s.message());
                    }
                    ask.second_factor = rpassword::prompt_password("authentication code (or a recovery code): ")
                        .context("reading the code")?;
                    sessions.login(ask).await
                }
                other => other,
            };
            let answer = answer.map_err(|s| status("signing in", s))?.into_inner();
            ("session", answer.session_token)
        }
    };
    let me = SessionServiceClient::new(channel)
        .who_am_i(Api::new_request(&token, pb::WhoAmIRequest {})?)
        .await
        .map_err(|s| status("checking the credential", s))?
        .into_inner();
    let path = credentials::save(
        dir,
        &Credentials {
            collector: collector.to_owned(),
            ca_fingerprint: ca_fingerprint.trim_start_matches("sha256:").to_owned(),
            kind: kind.to_owned(),
            username: me.username.clone(),
            token,
        },
    )?;
    println!(
        "Logged in to {collector} as {} ({kind}); credentials in {}",
        me.username,
        path.display()
    );
    Ok(())
}

pub(crate) async fn logout(dir: &Path) -> Result<()> {
    if let Ok(c) = credentials::load(dir)
        && c.kind == "session"
    {
        // Ending the session on the collector is best effort; forgetting it here is not.
        if let Ok(api) = api(dir).await {
            let req = api.request(pb::LogoutRequest {})?;
            if let Err(s) = SessionServiceClient::new(api.channel.clone()).logout(req).await {
                eprintln!("warning: the collector did not end the session: {}", s.message());
            }
        }
    }
    if credentials::remove(dir)? {
        println!("Logged out.");
    } else {
        println!("Not logged in.");
    }
    Ok(())
}

pub(crate) async fn whoami(dir: &Path, out: Output) -> Result<()> {
    let api = api(dir).await?;
    let me = SessionServiceClient::new(api.channel.clone())
        .who_am_i(api.request(pb::WhoAmIRequest {})?)
        .await
        .map_err(|s| status("asking who you are", s))?
        .into_inner();
    if out.json {
        table::json(&json!({
            "username": me.username,
            "msp_admin": me.msp_admin,
            "credential": me.credential,
            "token_scope": me.token_scope,
            "token_expires_at_ms": me.token_expires_at_ms,
            "memberships": me.memberships.iter().map(|m| json!({
                "tenant_id": m.tenant_id, "tenant_name": m.tenant_name, "role": role_name(m.role),
            })).collect::<Vec<_>>(),
        }));
        return Ok(());
    }
    println!(
        "{}{} ({})",
        me.username,
        if me.msp_admin { ", MSP administrator" } else { "" },
        me.credential
    );
    let rows: Vec<Vec<String>> = me
        .memberships
        .iter()
        .map(|m| vec![m.tenant_name.clone(), role_name(m.role).to_owned(), m.tenant_id.clone()])
        .collect();
    if !rows.is_empty() {
        table::print(&["TENANT", "ROLE", "ID"], &rows);
    }
    Ok(())
}

pub(crate) async fn tenants(dir: &Path, out: Output) -> Result<()> {
    let api = api(dir).await?;
    let tenants = TenantServiceClient::new(api.channel.clone())
        .list_tenants(api.request(pb::ListTenantsRequest {})?)
        .await
        .map_err(|s| status("listing tenants", s))?
        .into_inner()
        .tenants;
    if out.json {
        table::json(
            &json!({ "tenants": tenants.iter().map(|t| json!({"id": t.id, "name": t.name})).collect::<Vec<_>>() }),
        );
    } else {
        let rows: Vec<Vec<String>> = tenants.into_iter().map(|t| vec![t.name, t.id]).collect();
        table::print(&["NAME", "ID"], &rows);
    }
    Ok(())
}

pub(crate) async fn sites(dir: &Path, filter: &Filter, out: Output) -> Result<()> {
    let api = api(dir).await?;
    let sites = TenantServiceClient::new(api.channel.clone())
        .list_sites(api.request(pb::ListSitesRequest {
            tenant_id: filter.tenant.clone().unwrap_or_default(),
        })?)
        .await
        .map_err(|s| status("listing sites", s))?
        .into_inner()
        .sites;
    let sites: Vec<_> = sites
        .into_iter()
        .filter(|s| filter.site.as_ref().is_none_or(|id| *id == s.id))
        .collect();
    if out.json {
        table::json(&json!({ "sites": sites.iter().map(|s| json!({
            "id": s.id, "name": s.name, "tenant_id": s.tenant_id, "tenant_name": s.tenant_name,
        })).collect::<Vec<_>>() }));
    } else {
        let rows: Vec<Vec<String>> = sites.into_iter().map(|s| vec![s.tenant_name, s.name, s.id]).collect();
        table::print(&["TENANT", "SITE", "ID"], &rows);
    }
    Ok(())
}

pub(crate) async fn agents(dir: &Path, filter: &Filter, out: Output) -> Result<()> {
    let api = api(dir).await?;
    let agents = AgentServiceClient::new(api.channel.clone())
        .list_agents(api.request(pb::ListAgentsRequest {
            tenant_id: filter.tenant.clone().unwrap_or_default(),
            site_id: filter.site.clone().unwrap_or_default(),
        })?)
        .await
        .map_err(|s| status("listing agents", s))?
        .into_inner()
        .agents;
    if out.json {
        table::json(&json!({ "agents": agents.iter().map(|a| json!({
            "id": a.id, "tenant_id": a.tenant_id, "tenant_name": a.tenant_name, "site_id": a.site_id,
            "site_name": a.site_name, "hostname": a.hostname, "os": a.os, "version": a.version,
            "online": a.online, "last_seen_ms": a.last_seen_ms, "outbox_depth": a.outbox_depth,
            "revoked": a.revoked, "cert_not_after_ms": a.cert_not_after_ms,
        })).collect::<Vec<_>>() }));
    } else {
        let rows: Vec<Vec<String>> = agents
            .into_iter()
            .map(|a| {
                let state = if a.revoked {
                    "revoked"
                } else if a.online {
                    "online"
                } else {
                    "offline"
                };
                vec![
                    a.tenant_name,
                    a.site_name,
                    a.hostname,
                    state.to_owned(),
                    time(a.last_seen_ms),
                    a.outbox_depth.to_string(),
                    a.id,
                ]
            })
            .collect();
        table::print(&["TENANT", "SITE", "HOST", "STATE", "LAST SEEN", "OUTBOX", "ID"], &rows);
    }
    Ok(())
}

pub(crate) async fn devices(dir: &Path, filter: &Filter, out: Output) -> Result<()> {
    let api = api(dir).await?;
    let devices = DeviceServiceClient::new(api.channel.clone())
        .list_devices(api.request(pb::ListDevicesRequest {
            tenant_id: filter.tenant.clone().unwrap_or_default(),
            site_id: filter.site.clone().unwrap_or_default(),
        })?)
        .await
        .map_err(|s| status("listing devices", s))?
        .into_inner()
        .devices;
    if out.json {
        table::json(&json!({ "devices": devices.iter().map(|d| json!({
            "id": d.id, "tenant_id": d.tenant_id, "tenant_name": d.tenant_name, "site_id": d.site_id,
            "site_name": d.site_name, "address": d.address, "api_port": d.api_port, "api_tls": d.api_tls,
            "state": d.state, "state_reason": d.state_reason, "identity": d.identity, "version": d.version,
            "board_name": d.board_name, "uptime_secs": d.uptime_secs, "cpu_load": d.cpu_load,
            "update_available": d.update_available, "last_poll_ms": d.last_poll_ms, "agent_id": d.agent_id,
        })).collect::<Vec<_>>() }));
    } else {
        let rows: Vec<Vec<String>> = devices
            .into_iter()
            .map(|d| {
                vec![
                    d.tenant_name,
                    d.site_name,
                    d.address,
                    d.identity,
                    d.version,
                    d.state,
                    d.last_poll_ms.map_or_else(|| "-".to_owned(), time),
                    d.id,
                ]
            })
            .collect();
        table::print(
            &[
                "TENANT",
                "SITE",
                "ADDRESS",
                "IDENTITY",
                "VERSION",
                "STATE",
                "LAST POLL",
                "ID",
            ],
            &rows,
        );
    }
    Ok(())
}

pub(crate) async fn hosts(dir: &Path, filter: &Filter, gone: bool, out: Output) -> Result<()> {
    let api = api(dir).await?;
    let hosts = InventoryServiceClient::new(api.channel.clone())
        .list_hosts(api.request(pb::ListHostsRequest {
            tenant_id: filter.tenant.clone().unwrap_or_default(),
            site_id: filter.site.clone().unwrap_or_default(),
            include_gone: gone,
            limit: 0,
        })?)
        .await
        .map_err(|s| status("listing hosts", s))?
        .into_inner()
        .hosts;
    if out.json {
        table::json(&json!({ "hosts": hosts.iter().map(|h| json!({
            "id": h.id, "tenant_id": h.tenant_id, "site_id": h.site_id, "site_name": h.site_name,
            "address": h.address, "mac": h.mac, "vendor": h.vendor, "name": h.name, "names": h.names,
            "os_guess": h.os_guess, "first_seen_ms": h.first_seen_ms, "last_seen_ms": h.last_seen_ms,
            "gone_at_ms": h.gone_at_ms, "device_id": h.device_id,
            "open_ports": h.open_ports.iter().map(|p| json!({"protocol": p.protocol, "port": p.port})).collect::<Vec<_>>(),
        })).collect::<Vec<_>>() }));
    } else {
        let rows: Vec<Vec<String>> = hosts
            .into_iter()
            .map(|h| {
                let ports: Vec<String> = h
                    .open_ports
                    .iter()
                    .map(|p| format!("{}/{}", p.port, p.protocol))
                    .collect();
                vec![
                    h.site_name,
                    h.address,
                    h.mac,
                    h.vendor,
                    h.name,
                    ports.join(","),
                    time(h.last_seen_ms),
                ]
            })
            .collect();
        table::print(
            &["SITE", "ADDRESS", "MAC", "VENDOR", "NAME", "OPEN PORTS", "LAST SEEN"],
            &rows,
        );
    }
    Ok(())
}

pub(crate) async fn revoke_agent(dir: &Path, id: &str) -> Result<()> {
    let api = api(dir).await?;
    AgentServiceClient::new(api.channel.clone())
        .revoke_agent(api.request(pb::RevokeAgentRequest {
            agent_id: id.to_owned(),
        })?)
        .await
        .map_err(|s| status("revoking the agent", s))?;
    println!("Agent {id} revoked; it is refused from its next connection.");
    Ok(())
}

pub(crate) async fn enrollment_token(dir: &Path, site: &str, ttl_secs: i64) -> Result<()> {
    let api = api(dir).await?;
    let made = AgentServiceClient::new(api.channel.clone())
        .create_enrollment_token(api.request(pb::CreateEnrollmentTokenRequest {
            site_id: site.to_owned(),
            valid_for_secs: ttl_secs,
        })?)
        .await
        .map_err(|s| status("creating an enrollment token", s))?
        .into_inner();
    println!(
        "Enrollment token (single use, valid until {}):",
        time(made.expires_at_ms)
    );
    println!("{}", made.token);
    Ok(())
}

pub(crate) async fn create_api_token(
    dir: &Path,
    name: &str,
    scope: &str,
    tenant: Option<&str>,
    ttl_secs: i64,
) -> Result<()> {
    let api = api(dir).await?;
    let made = ApiTokenServiceClient::new(api.channel.clone())
        .create_api_token(api.request(pb::CreateApiTokenRequest {
            name: name.to_owned(),
            scope: scope.to_owned(),
            tenant_id: tenant.unwrap_or_default().to_owned(),
            valid_for_secs: ttl_secs,
        })?)
        .await
        .map_err(|s| status("creating an API token", s))?
        .into_inner();
    let expires = made.token.as_ref().map_or(0, |t| t.expires_at_ms);
    println!(
        "API token {name:?} ({scope}, valid until {}); shown this once:",
        time(expires)
    );
    println!("{}", made.secret);
    Ok(())
}

pub(crate) async fn api_tokens(dir: &Path, tenant: Option<&str>, out: Output) -> Result<()> {
    let api = api(dir).await?;
    let tokens = ApiTokenServiceClient::new(api.channel.clone())
        .list_api_tokens(api.request(pb::ListApiTokensRequest {
            tenant_id: tenant.unwrap_or_default().to_owned(),
        })?)
        .await
        .map_err(|s| status("listing API tokens", s))?
        .into_inner()
        .tokens;
    if out.json {
        table::json(&json!({ "tokens": tokens.iter().map(|t| json!({
            "id": t.id, "name": t.name, "scope": t.scope, "tenant_id": t.tenant_id, "created_by": t.created_by,
            "created_at_ms": t.created_at_ms, "expires_at_ms": t.expires_at_ms, "last_used_ms": t.last_used_ms,
            "revoked": t.revoked,
        })).collect::<Vec<_>>() }));
    } else {
        let rows: Vec<Vec<String>> = tokens
            .into_iter()
            .map(|t| {
                vec![
                    t.name,
                    t.scope,
                    if t.tenant_id.is_empty() {
                        "(MSP-wide)".to_owned()
                    } else {
                        t.tenant_id
                    },
                    t.created_by,
                    time(t.expires_at_ms),
                    t.last_used_ms.map_or_else(|| "never".to_owned(), time),
                    if t.revoked { "revoked".to_owned() } else { String::new() },
                    t.id,
                ]
            })
            .collect();
        table::print(
            &["NAME", "SCOPE", "TENANT", "BY", "EXPIRES", "LAST USED", "", "ID"],
            &rows,
        );
    }
    Ok(())
}

pub(crate) async fn revoke_api_token(dir: &Path, id: &str) -> Result<()> {
    let api = api(dir).await?;
    ApiTokenServiceClient::new(api.channel.clone())
        .revoke_api_token(api.request(pb::RevokeApiTokenRequest {
            token_id: id.to_owned(),
        })?)
        .await
        .map_err(|s| status("revoking the API token", s))?;
    println!("API token {id} revoked.");
    Ok(())
}

/// Unix ms of an RFC 3339 time.
fn parse_time(flag: &str, s: &str) -> Result<i64> {
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .with_context(|| format!("{flag} {s:?} is not an RFC 3339 time (e.g. 2025-01-31T00:00:00Z)"))?;
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).with_context(|| format!("{flag} {s:?} is out of range"))
}

/// `2025-01-31T14:05:09.123Z`, as `outpost-collector audit export` writes it.
fn rfc3339(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .map(|t| {
            format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute(),
                t.second(),
                t.millisecond()
            )
        })
        .unwrap_or_else(|| ms.to_string())
}

fn csv_field(field: &str) -> String {
    if field.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_owned()
    }
}

/// `audit export`: every record of `[from, to)` the credential may read, page
/// by page, as the collector's own `audit export` writes them.
pub(crate) async fn audit_export(dir: &Path, from: &str, to: Option<&str>) -> Result<()> {
    use std::io::Write as _;
    let from_ms = parse_time("--from", from)?;
    let to_ms = match to {
        Some(t) => parse_time("--to", t)?,
        None => outpost_now_ms(),
    };
    if to_ms < from_ms {
        bail!("--to is before --from");
    }
    let api = api(dir).await?;
    let mut client = outpost_proto::api_v1::audit_service_client::AuditServiceClient::new(api.channel.clone());
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    out.write_all(b"seq,time,tenant_id,tenant,actor,source,action,object,outcome,details,hash\r\n")?;
    let mut after = 0;
    loop {
        let page = client
            .list_audit_records(api.request(pb::ListAuditRecordsRequest {
                from_ms,
                to_ms,
                after_seq: after,
                limit: 5_000,
            })?)
            .await
            .map_err(|s| status("reading the audit log", s))?
            .into_inner()
            .records;
        let Some(last) = page.last() else { break };
        after = last.seq;
        for r in &page {
            let fields = [
                r.seq.to_string(),
                rfc3339(r.at_ms),
                r.tenant_id.clone(),
                r.tenant_name.clone(),
                r.actor.clone(),
                r.source_address.clone(),
                r.action.clone(),
                r.object.clone(),
                r.outcome.clone(),
                r.details.clone(),
                r.hash.clone(),
            ];
            let line = fields.iter().map(|f| csv_field(f)).collect::<Vec<_>>().join(",");
            out.write_all(line.as_bytes())?;
            out.write_all(b"\r\n")?;
        }
    }
    out.flush().context("writing to standard output")?;
    Ok(())
}

fn outpost_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
