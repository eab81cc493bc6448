//! `api-token create|list|revoke`: API tokens from the machine that holds the
//! data directory, for a program's first token before anyone uses the
//! console. A token is made for a named user, whose role caps it from then on.
use anyhow::{Context, Result};
use outpost_store::api_tokens::{DEFAULT_TTL_MS, NewApiToken, TokenBinding, TokenScope};
use outpost_store::audit::Actor;
use outpost_store::members::Principal;

use crate::cli::Location;
use crate::commands::open;
use crate::user_commands::{store_error, tenant_by_name};

/// `api-token create`: prints the token on the last line, once.
pub async fn create(
    location: &Location,
    user: &str,
    tenant: Option<&str>,
    scope: &str,
    name: &str,
    ttl_secs: Option<u64>,
) -> Result<String> {
    let scope: TokenScope = scope.parse().map_err(anyhow::Error::msg)?;
    let (store, admin) = open(location).await?;
    let result = async {
        let operator = Principal::local_operator(&admin);
        let user_id = store.user_id_by_name(user).await.map_err(store_error)?;
        let binding = match tenant {
            Some(t) => TokenBinding::Tenant(admin.tenant_scope(tenant_by_name(&store, &operator, t).await?)),
            None => TokenBinding::MspWide(admin),
        };
        let ttl_ms = match ttl_secs {
            Some(s) => i64::try_from(s.saturating_mul(1_000)).context("lifetime too long")?,
            None => DEFAULT_TTL_MS,
        };
        let made = store
            .create_api_token(
                &NewApiToken {
                    name,
                    scope,
                    binding,
                    created_by: &user_id,
                    ttl_ms,
                },
                &Actor::local_operator(),
            )
            .await
            .map_err(store_error)?;
        Ok::<_, anyhow::Error>(made)
    }
    .await;
    store.close().await;
    let (row, secret) = result?;
    println!(
        "API token {} ({name:?}, {scope}, for {user}, {}), valid until Unix ms {}; shown this once:",
        row.id,
        tenant.map_or_else(|| "every tenant".to_owned(), |t| format!("tenant {t:?}")),
        row.expires_at_ms
    );
    println!("{secret}");
    Ok(secret)
}

/// `api-token list`.
pub async fn list(location: &Location, json: bool) -> Result<()> {
    let (store, admin) = open(location).await?;
    let rows = store.all_api_tokens(&admin).await;
    store.close().await;
    let rows = rows?;
    if json {
        let v: Vec<serde_json::Value> = rows
            .iter()
            .map(|t| {
                serde_json::json!({
                    "id": t.id, "name": t.name, "scope": t.scope.as_str(),
                    "tenant_id": t.tenant.map(|t| t.to_string()), "created_by": t.created_by_name,
                    "created_at_ms": t.created_at_ms, "expires_at_ms": t.expires_at_ms,
                    "last_used_ms": t.last_used_ms, "revoked_at_ms": t.revoked_at_ms,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    if rows.is_empty() {
        println!("No API tokens.");
    }
    for t in rows {
        println!(
            "{}  {:<20} {:<8} {:<38} by {:<16} expires {}{}",
            t.id,
            t.name,
            t.scope.as_str(),
            t.tenant.map_or_else(|| "(every tenant)".to_owned(), |t| t.to_string()),
            t.created_by_name,
            t.expires_at_ms,
            if t.revoked_at_ms.is_some() { "  revoked" } else { "" }
        );
    }
    Ok(())
}

/// `api-token revoke ID`.
pub async fn revoke(location: &Location, id: &str) -> Result<()> {
    let (store, admin) = open(location).await?;
    let result = store
        .revoke_api_token(TokenBinding::MspWide(admin), id, &Actor::local_operator())
        .await;
    store.close().await;
    result.map_err(store_error)?;
    println!("API token {id} revoked.");
    Ok(())
}
