//! `user add|list|role|remove`: console users and their tenant roles, for
//! bootstrapping before anyone can sign in (the console manages them after).
use anyhow::{Result, bail};
use outpost_store::members::{NewUser, Principal, Role};
use outpost_store::{Store, StoreError};

use crate::cli::Location;
use crate::commands::{open, random_password};

/// The tenant named `name`.
pub(crate) async fn tenant_by_name(store: &Store, actor: &Principal, name: &str) -> Result<outpost_certs::TenantId> {
    let tenants = store.list_tenants(actor).await?;
    match tenants.into_iter().find(|t| t.name == name) {
        Some(t) => Ok(t.id),
        None => bail!("no tenant named {name:?}"),
    }
}

pub(crate) fn store_error(e: StoreError) -> anyhow::Error {
    match e {
        StoreError::NotFound(what) => anyhow::anyhow!("{what} not found"),
        StoreError::Invalid(why) | StoreError::Conflict(why) => anyhow::anyhow!("{why}"),
        e => e.into(),
    }
}

/// `user add`: prints the new user's password once and returns it.
pub async fn add(
    location: &Location,
    username: &str,
    tenant: Option<&str>,
    role: &str,
    msp_admin: bool,
) -> Result<String> {
    let role: Role = role.parse().map_err(anyhow::Error::msg)?;
    let (store, admin) = open(location).await?;
    let actor = Principal::local_operator(&admin);
    let result = async {
        let kind = match (msp_admin, tenant) {
            (true, _) => NewUser::MspAdmin,
            (false, Some(name)) => NewUser::Member(tenant_by_name(&store, &actor, name).await?, role),
            (false, None) => bail!("give --tenant NAME (with --role) or --msp-admin"),
        };
        let password = random_password();
        store
            .create_user(
                &actor,
                username,
                &password,
                kind,
                &outpost_store::audit::Actor::local_operator(),
            )
            .await
            .map_err(store_error)?;
        Ok(password)
    }
    .await;
    store.close().await;
    let password = result?;
    match (msp_admin, tenant) {
        (true, _) => println!("Created MSP administrator {username:?}."),
        (false, Some(t)) => println!("Created user {username:?}: {role} of tenant {t:?}."),
        (false, None) => {}
    }
    println!("Password (shown once): {password}");
    Ok(password)
}

/// `user list`.
pub async fn list(location: &Location, json: bool) -> Result<()> {
    let (store, admin) = open(location).await?;
    let users = store.list_users(&Principal::local_operator(&admin)).await;
    store.close().await;
    let users = users?;
    if json {
        let rows: Vec<serde_json::Value> = users
            .iter()
            .map(|u| {
                serde_json::json!({
                    "username": u.username,
                    "msp_admin": u.msp_admin,
                    "disabled": u.disabled,
                    "totp": u.totp,
                    "roles": u.roles.iter().map(|(_, name, role)| serde_json::json!({"tenant": name, "role": role.as_str()})).collect::<Vec<_>>(),
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    for u in &users {
        let mut what: Vec<String> = u.roles.iter().map(|(_, t, r)| format!("{r} of {t}")).collect();
        if u.msp_admin {
            what.insert(0, "MSP administrator".into());
        }
        if u.disabled {
            what.push("disabled".into());
        }
        if u.totp {
            what.push("TOTP".into());
        }
        println!("{}\t{}", u.username, what.join(", "));
    }
    Ok(())
}

/// `user role`.
pub async fn role(location: &Location, username: &str, tenant: &str, role: &str) -> Result<()> {
    let role = match role {
        "none" => None,
        r => Some(r.parse::<Role>().map_err(anyhow::Error::msg)?),
    };
    let (store, admin) = open(location).await?;
    let actor = Principal::local_operator(&admin);
    let result = async {
        let tenant_id = tenant_by_name(&store, &actor, tenant).await?;
        let user = store.user_id_by_name(username).await.map_err(store_error)?;
        store
            .set_role(
                &actor,
                &user,
                tenant_id,
                role,
                &outpost_store::audit::Actor::local_operator(),
            )
            .await
            .map_err(store_error)
    }
    .await;
    store.close().await;
    result?;
    match role {
        Some(r) => println!("{username:?} is now {r} of tenant {tenant:?}."),
        None => println!("{username:?} no longer has access to tenant {tenant:?}."),
    }
    Ok(())
}

/// `user remove`.
pub async fn remove(location: &Location, username: &str) -> Result<()> {
    let (store, admin) = open(location).await?;
    let actor = Principal::local_operator(&admin);
    let result = async {
        let user = store.user_id_by_name(username).await.map_err(store_error)?;
        store
            .delete_user(&actor, &user, &outpost_store::audit::Actor::local_operator())
            .await
            .map_err(store_error)
    }
    .await;
    store.close().await;
    result?;
    println!("Deleted user {username:?}; their sessions have ended.");
    Ok(())
}
