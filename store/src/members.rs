//! Who a signed-in user is and what they may do: MSP-wide administrators, and
//! members of tenants with a [`Role`] in each.
//!
//! The session check builds a [`Principal`]; [`Principal::authorize`] is the one
//! place a tenant-bound user gets a [`TenantScope`]: only for a tenant they are
//! a member of (else [`Denied::NotFound`]: another tenant's objects do not
//! exist for them) with a high enough role (else [`Denied::Forbidden`]).
use std::fmt;
use std::str::FromStr;

use outpost_certs::TenantId;

use super::audit::{Actor, AppendAudit, AuditEvent, Details};
use super::passwords::hash_password;
use super::scope::{TenantSet, Viewer};
use super::{AdminScope, Store, StoreError, TenantScope, now_ms, on_pool, parse_id};
use crate::row_scope::RowScope;

/// A user's role in one tenant. Ordered: each role may do everything the
/// ones below it may.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Reads everything of the tenant.
    Viewer,
    /// Also everything operational: devices, backups, scans, discovery, adoption.
    Operator,
    /// Also the tenant's users, agents and enrollment tokens, and revealing
    /// configuration secrets.
    Admin,
}

impl Role {
    /// Every role, lowest first.
    pub const ALL: [Role; 3] = [Role::Viewer, Role::Operator, Role::Admin];

    /// The name stored and shown: `viewer`, `operator`, `admin`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| format!("unknown role {s:?}: use viewer, operator or admin"))
    }
}

/// Why a principal may not act on something.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    /// It belongs to a tenant the user is not a member of: for them it does
    /// not exist (HTTP 404, gRPC NOT_FOUND).
    #[error("not found")]
    NotFound,
    /// Their own tenant, but their role there is too low (HTTP 403, gRPC
    /// PERMISSION_DENIED).
    #[error("permission denied")]
    Forbidden,
}

/// A signed-in user (or the local operator), as the session check found them.
#[derive(Clone, Debug)]
pub struct Principal {
    user_id: String,
    username: String,
    admin: Option<AdminScope>,
    /// Sorted by tenant.
    roles: Vec<(TenantId, Role)>,
}

impl Principal {
    pub(crate) fn verified(
        user_id: String,
        username: String,
        msp_admin: bool,
        mut roles: Vec<(TenantId, Role)>,
    ) -> Self {
        roles.sort_unstable();
        Self {
            user_id,
            username,
            admin: msp_admin.then(AdminScope::verified),
            roles,
        }
    }

    /// A principal for other crates' unit tests. Compiled only with the
    /// `test-support` feature.
    #[cfg(feature = "test-support")]
    #[doc(hidden)]
    pub fn for_tests(username: &str, msp_admin: bool, roles: Vec<(TenantId, Role)>) -> Self {
        Self::verified(format!("id-{username}"), username.to_owned(), msp_admin, roles)
    }

    /// Whoever holds the data directory (the collector's commands) acting as
    /// an MSP-wide administrator.
    pub fn local_operator(_admin: &AdminScope) -> Self {
        Self::verified(String::new(), "(local operator)".to_owned(), true, Vec::new())
    }

    /// The user's id (empty for the local operator).
    pub fn user_id(&self) -> &str {
        &self.user_id
    }

    /// The user name.
    pub fn username(&self) -> &str {
        &self.username
    }

    /// The MSP-wide scope, for an MSP administrator.
    pub fn admin_scope(&self) -> Option<&AdminScope> {
        self.admin.as_ref()
    }

    /// Whether the user is an MSP-wide administrator.
    pub fn is_msp_admin(&self) -> bool {
        self.admin.is_some()
    }

    /// The user's role in `tenant`; an MSP administrator is admin everywhere.
    pub fn role_in(&self, tenant: TenantId) -> Option<Role> {
        if self.admin.is_some() {
            return Some(Role::Admin);
        }
        self.roles.iter().find(|(t, _)| *t == tenant).map(|(_, r)| *r)
    }

    /// The user's memberships (none for an MSP administrator, who needs none).
    pub fn memberships(&self) -> &[(TenantId, Role)] {
        &self.roles
    }

    /// The scope to act in `tenant` with, if the user is a member with at least `need`.
    pub fn authorize(&self, tenant: TenantId, need: Role) -> Result<TenantScope, Denied> {
        match self.role_in(tenant) {
            None => Err(Denied::NotFound),
            Some(role) if role < need => Err(Denied::Forbidden),
            Some(_) => Ok(TenantScope::verified(tenant)),
        }
    }

    /// Whether the user holds at least `need` in some tenant (always, for an
    /// MSP administrator).
    pub fn has_role_somewhere(&self, need: Role) -> bool {
        self.admin.is_some() || self.roles.iter().any(|(_, r)| *r >= need)
    }

    /// What the user may read: every tenant, or their tenants.
    pub fn viewer(&self) -> Viewer {
        match self.admin {
            Some(admin) => Viewer::Admin(admin),
            None => Viewer::Tenants(TenantSet::verified(self.roles.iter().map(|(t, _)| *t).collect())),
        }
    }

    /// What the user may administer (tenants where they are admin; every
    /// tenant for an MSP administrator): the audit log's readers.
    pub fn admin_viewer(&self) -> Viewer {
        match self.admin {
            Some(admin) => Viewer::Admin(admin),
            None => Viewer::Tenants(TenantSet::verified(
                self.roles
                    .iter()
                    .filter(|(_, r)| *r == Role::Admin)
                    .map(|(t, _)| *t)
                    .collect(),
            )),
        }
    }
}

/// A user as an administrator's list shows them.
#[derive(Clone, Debug)]
pub struct UserRow {
    /// Id.
    pub id: String,
    /// User name.
    pub username: String,
    /// MSP-wide administrator.
    pub msp_admin: bool,
    /// Disabled: cannot sign in.
    pub disabled: bool,
    /// Has a second factor.
    pub totp: bool,
    /// Memberships in the tenants the listing principal administers, as
    /// (tenant, tenant name, role), by tenant name.
    pub roles: Vec<(TenantId, String, Role)>,
}

/// A tenant for listings.
#[derive(Clone, Debug)]
pub struct TenantRow {
    /// Id.
    pub id: TenantId,
    /// Name.
    pub name: String,
}

/// What a new user starts as.
#[derive(Clone, Copy, Debug)]
pub enum NewUser {
    /// An MSP-wide administrator.
    MspAdmin,
    /// A member of one tenant.
    Member(TenantId, Role),
}

pub(crate) fn validate_username(name: &str) -> Result<(), StoreError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '@'));
    if ok {
        Ok(())
    } else {
        Err(StoreError::Invalid(format!(
            "user name {name:?}: use 1 to 64 letters, digits, '.', '-', '_' or '@'"
        )))
    }
}

pub(crate) fn validate_password(password: &str) -> Result<(), StoreError> {
    if password.chars().count() < 8 || password.len() > 1024 {
        return Err(StoreError::Invalid("a password needs 8 to 1024 characters".to_owned()));
    }
    Ok(())
}

fn denied(d: Denied, what: &str) -> StoreError {
    match d {
        Denied::NotFound => StoreError::NotFound(what.to_owned()),
        Denied::Forbidden => StoreError::Forbidden(what.to_owned()),
    }
}

async fn hash(password: &str) -> Result<String, StoreError> {
    let password = password.to_owned();
    tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|e| StoreError::Corrupt(format!("hashing task failed: {e}")))?
}

impl Store {
    /// The memberships of a user, as (tenant, role).
    pub(crate) async fn roles_of(&self, user_id: &str) -> Result<Vec<(TenantId, Role)>, StoreError> {
        let rows: Vec<(String, String)> = on_pool!(self, RowScope::All, pool, _Db => {
            sqlx::query_as("SELECT tenant_id, role FROM memberships WHERE user_id = $1")
                .bind(user_id)
                .fetch_all(pool)
                .await?
        });
        rows.into_iter()
            .map(|(t, r)| Ok((parse_id("tenant", &t)?, r.parse().map_err(StoreError::Corrupt)?)))
            .collect()
    }

    /// Whether `actor` may manage `user_id` as a whole (password, second
    /// factor, disabling, deleting): an MSP administrator may manage anyone; a
    /// tenant admin only users whose every membership is in a tenant they
    /// administer, and no MSP administrator. A user of the actor's tenants
    /// where the actor is not admin is "forbidden"; one sharing none of the
    /// actor's tenants is "not found".
    async fn check_manage(&self, actor: &Principal, user_id: &str) -> Result<(), StoreError> {
        let row: Option<(i64,)> = on_pool!(self, RowScope::All, pool, _Db => {
            sqlx::query_as("SELECT is_msp_admin FROM users WHERE id = $1").bind(user_id).fetch_optional(pool).await?
        });
        let Some((msp,)) = row else {
            return Err(StoreError::NotFound(format!("user {user_id}")));
        };
        if actor.is_msp_admin() {
            return Ok(());
        }
        let roles = self.roles_of(user_id).await?;
        let admin_of = |t: TenantId| actor.role_in(t) == Some(Role::Admin);
        if !roles.iter().any(|(t, _)| admin_of(*t)) {
            // A member of a tenant the actor belongs to without being its
            // admin: the role is too low. Anyone else does not exist for them.
            if roles.iter().any(|(t, _)| actor.role_in(*t).is_some()) {
                return Err(StoreError::Forbidden(format!(
                    "managing user {user_id} needs the admin role in their tenant"
                )));
            }
            return Err(StoreError::NotFound(format!("user {user_id}")));
        }
        if msp != 0 || !roles.iter().all(|(t, _)| admin_of(*t)) {
            return Err(StoreError::Forbidden(format!(
                "user {user_id} belongs to other tenants too"
            )));
        }
        Ok(())
    }

    /// Creates a user. Only an MSP administrator creates MSP administrators;
    /// a tenant admin creates members of their own tenants.
    pub async fn create_user(
        &self,
        actor: &Principal,
        username: &str,
        password: &str,
        kind: NewUser,
        by: &Actor,
    ) -> Result<String, StoreError> {
        validate_username(username)?;
        validate_password(password)?;
        match kind {
            NewUser::MspAdmin if !actor.is_msp_admin() => {
                return Err(StoreError::Forbidden(
                    "only MSP administrators create MSP administrators".into(),
                ));
            }
            NewUser::MspAdmin => {}
            NewUser::Member(tenant, _) => {
                actor.authorize(tenant, Role::Admin).map_err(|d| denied(d, "tenant"))?;
            }
        }
        let hash = hash(password).await?;
        let id = uuid::Uuid::new_v4().to_string();
        let now = now_ms();
        let event = match kind {
            NewUser::MspAdmin => AuditEvent::success(None, "user.create", format!("user {username}"))
                .with(Details::new().flag("msp_admin", true)),
            NewUser::Member(tenant, role) => {
                AuditEvent::success(Some(tenant), "user.create", format!("user {username}"))
                    .with(Details::new().text("role", role.as_str()))
            }
        };
        on_pool!(self, RowScope::All, pool, Db => {
            let mut tx = pool.begin().await?;
            let inserted = sqlx::query(
                "INSERT INTO users (id, username, password_hash, is_msp_admin, created_at_ms) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (username) DO NOTHING",
            )
            .bind(&id)
            .bind(username)
            .bind(&hash)
            .bind(i64::from(matches!(kind, NewUser::MspAdmin)))
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if inserted == 0 {
                return Err(StoreError::Conflict(format!("user {username:?} already exists")));
            }
            if let NewUser::Member(tenant, role) = kind {
                sqlx::query("INSERT INTO memberships (user_id, tenant_id, role, created_at_ms) VALUES ($1, $2, $3, $4)")
                    .bind(&id)
                    .bind(tenant.to_string())
                    .bind(role.as_str())
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
            }
            <Db as AppendAudit>::append(&mut tx, by, std::slice::from_ref(&event)).await?;
            tx.commit().await?;
        });
        Ok(id)
    }

    /// The id of the user named `username`.
    pub async fn user_id_by_name(&self, username: &str) -> Result<String, StoreError> {
        let row: Option<(String,)> = on_pool!(self, RowScope::All, pool, _Db => {
            sqlx::query_as("SELECT id FROM users WHERE username = $1").bind(username).fetch_optional(pool).await?
        });
        row.map(|(id,)| id)
            .ok_or_else(|| StoreError::NotFound(format!("user {username:?}")))
    }

    /// The users `actor` administers: everyone for an MSP administrator, else
    /// the members of the tenants they are admin of (showing only those
    /// memberships), by name.
    pub async fn list_users(&self, actor: &Principal) -> Result<Vec<UserRow>, StoreError> {
        let filter = actor.admin_viewer().tenant_filter();
        type Row = (
            String,
            String,
            i64,
            Option<i64>,
            bool,
            Option<String>,
            Option<String>,
            Option<String>,
        );
        let rows: Vec<Row> = on_pool!(self, RowScope::All, pool, _Db => {
            sqlx::query_as(
                "SELECT u.id, u.username, u.is_msp_admin, u.disabled_at_ms, u.totp_sealed IS NOT NULL, \
                 m.tenant_id, t.name, m.role FROM users u \
                 LEFT JOIN memberships m ON m.user_id = u.id \
                   AND ($1 IS NULL OR (',' || $1 || ',') LIKE ('%,' || m.tenant_id || ',%')) \
                 LEFT JOIN tenants t ON t.id = m.tenant_id \
                 WHERE $1 IS NULL OR m.tenant_id IS NOT NULL \
                 ORDER BY u.username, t.name",
            )
            .bind(filter)
            .fetch_all(pool)
            .await?
        });
        let mut out: Vec<UserRow> = Vec::new();
        for (id, username, msp, disabled, totp, tenant, tenant_name, role) in rows {
            if out.last().is_none_or(|u| u.id != id) {
                out.push(UserRow {
                    id: id.clone(),
                    username,
                    msp_admin: msp != 0,
                    disabled: disabled.is_some(),
                    totp,
                    roles: Vec::new(),
                });
            }
            if let (Some(t), Some(n), Some(r), Some(user)) = (tenant, tenant_name, role, out.last_mut()) {
                user.roles
                    .push((parse_id("tenant", &t)?, n, r.parse().map_err(StoreError::Corrupt)?));
            }
        }
        Ok(out)
    }

    /// Sets (`Some`) or removes (`None`) `user_id`'s role in `tenant`. The
    /// actor must be admin of `tenant`; a tenant admin may only give roles to
    /// users they can already see (members of their tenants), and not to MSP
    /// administrators.
    pub async fn set_role(
        &self,
        actor: &Principal,
        user_id: &str,
        tenant: TenantId,
        role: Option<Role>,
        by: &Actor,
    ) -> Result<(), StoreError> {
        actor.authorize(tenant, Role::Admin).map_err(|d| denied(d, "tenant"))?;
        if !actor.is_msp_admin() {
            let visible = self.list_users(actor).await?;
            match visible.iter().find(|u| u.id == user_id) {
                None => return Err(StoreError::NotFound(format!("user {user_id}"))),
                Some(u) if u.msp_admin => return Err(StoreError::Forbidden("an MSP administrator".into())),
                Some(_) => {}
            }
        }
        if actor.user_id() == user_id && !actor.is_msp_admin() {
            return Err(StoreError::Forbidden("you cannot change your own role".into()));
        }
        on_pool!(self, RowScope::All, pool, Db => {
            let mut tx = pool.begin().await?;
            let exists: Option<(String,)> = sqlx::query_as("SELECT username FROM users WHERE id = $1")
                .bind(user_id)
                .fetch_optional(&mut *tx)
                .await?;
            let Some((username,)) = exists else {
                return Err(StoreError::NotFound(format!("user {user_id}")));
            };
            match role {
                Some(role) => {
                    sqlx::query(
                        "INSERT INTO memberships (user_id, tenant_id, role, created_at_ms) VALUES ($1, $2, $3, $4) \
                         ON CONFLICT (user_id, tenant_id) DO UPDATE SET role = excluded.role",
                    )
                    .bind(user_id)
                    .bind(tenant.to_string())
                    .bind(role.as_str())
                    .bind(now_ms())
                    .execute(&mut *tx)
                    .await?;
                }
                None => {
                    sqlx::query("DELETE FROM memberships WHERE user_id = $1 AND tenant_id = $2")
                        .bind(user_id)
                        .bind(tenant.to_string())
                        .execute(&mut *tx)
                        .await?;
                }
            }
            let event = AuditEvent::success(Some(tenant), "user.role", format!("user {username}"))
                .with(Details::new().text("role", role.map_or("none", Role::as_str)));
            <Db as AppendAudit>::append(&mut tx, by, std::slice::from_ref(&event)).await?;
            tx.commit().await?;
        });
        Ok(())
    }

    /// Makes `user_id` an MSP administrator or not. MSP administrators only.
    pub async fn set_msp_admin(
        &self,
        actor: &Principal,
        user_id: &str,
        on: bool,
        by: &Actor,
    ) -> Result<(), StoreError> {
        if !actor.is_msp_admin() {
            return Err(StoreError::Forbidden("only MSP administrators".into()));
        }
        if !on && actor.user_id() == user_id {
            return Err(StoreError::Forbidden(
                "you cannot remove your own MSP administrator role".into(),
            ));
        }
        let event = AuditEvent::success(None, "user.msp_admin", format!("user {user_id}"))
            .with(Details::new().flag("msp_admin", on));
        on_pool!(self, RowScope::All, pool, Db => {
            let mut tx = pool.begin().await?;
            let n = sqlx::query("UPDATE users SET is_msp_admin = $1 WHERE id = $2")
                .bind(i64::from(on))
                .bind(user_id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if n == 0 {
                return Err(StoreError::NotFound(format!("user {user_id}")));
            }
            <Db as AppendAudit>::append(&mut tx, by, std::slice::from_ref(&event)).await?;
            tx.commit().await?;
        });
        Ok(())
    }

    /// Sets a new password for `user_id` and ends their sessions.
    pub async fn reset_password(
        &self,
        actor: &Principal,
        user_id: &str,
        password: &str,
        by: &Actor,
    ) -> Result<(), StoreError> {
        validate_password(password)?;
        self.check_manage(actor, user_id).await?;
        let hash = hash(password).await?;
        let event = AuditEvent::success(None, "user.set_password", format!("user {user_id}"));
        on_pool!(self, RowScope::All, pool, Db => {
            let mut tx = pool.begin().await?;
            sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
                .bind(&hash)
                .bind(user_id)
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM sessions WHERE user_id = $1").bind(user_id).execute(&mut *tx).await?;
            sqlx::query("DELETE FROM login_challenges WHERE user_id = $1").bind(user_id).execute(&mut *tx).await?;
            <Db as AppendAudit>::append(&mut tx, by, std::slice::from_ref(&event)).await?;
            tx.commit().await?;
        });
        Ok(())
    }

    /// Disables (ending their sessions) or re-enables `user_id`.
    pub async fn set_disabled(
        &self,
        actor: &Principal,
        user_id: &str,
        disabled: bool,
        by: &Actor,
    ) -> Result<(), StoreError> {
        if actor.user_id() == user_id {
            return Err(StoreError::Forbidden("you cannot disable yourself".into()));
        }
        self.check_manage(actor, user_id).await?;
        let event = AuditEvent::success(
            None,
            if disabled { "user.disable" } else { "user.enable" },
            format!("user {user_id}"),
        );
        on_pool!(self, RowScope::All, pool, Db => {
            let mut tx = pool.begin().await?;
            sqlx::query("UPDATE users SET disabled_at_ms = $1 WHERE id = $2")
                .bind(disabled.then(now_ms))
                .bind(user_id)
                .execute(&mut *tx)
                .await?;
            if disabled {
                sqlx::query("DELETE FROM sessions WHERE user_id = $1").bind(user_id).execute(&mut *tx).await?;
                sqlx::query("DELETE FROM login_challenges WHERE user_id = $1").bind(user_id).execute(&mut *tx).await?;
            }
            <Db as AppendAudit>::append(&mut tx, by, std::slice::from_ref(&event)).await?;
            tx.commit().await?;
        });
        Ok(())
    }

    /// Deletes `user_id` with their sessions, memberships and codes.
    pub async fn delete_user(&self, actor: &Principal, user_id: &str, by: &Actor) -> Result<(), StoreError> {
        if actor.user_id() == user_id {
            return Err(StoreError::Forbidden("you cannot delete yourself".into()));
        }
        self.check_manage(actor, user_id).await?;
        on_pool!(self, RowScope::All, pool, Db => {
            let mut tx = pool.begin().await?;
            let name: Option<String> = sqlx::query_scalar("DELETE FROM users WHERE id = $1 RETURNING username")
                .bind(user_id)
                .fetch_optional(&mut *tx)
                .await?;
            let event = AuditEvent::success(None, "user.delete", format!("user {}", name.as_deref().unwrap_or(user_id)));
            <Db as AppendAudit>::append(&mut tx, by, std::slice::from_ref(&event)).await?;
            tx.commit().await?;
        });
        Ok(())
    }

    /// Removes `user_id`'s second factor and recovery codes: they sign in
    /// with their password alone (or enrol again, if TOTP is required).
    pub async fn reset_second_factor(&self, actor: &Principal, user_id: &str, by: &Actor) -> Result<(), StoreError> {
        self.check_manage(actor, user_id).await?;
        self.clear_totp(user_id, Some(by)).await
    }

    /// The tenants `actor` may see, by name.
    pub async fn list_tenants(&self, actor: &Principal) -> Result<Vec<TenantRow>, StoreError> {
        let filter = actor.viewer().tenant_filter();
        let rows: Vec<(String, String)> = on_pool!(self, RowScope::All, pool, _Db => {
            sqlx::query_as(
                "SELECT id, name FROM tenants WHERE ($1 IS NULL OR (',' || $1 || ',') LIKE ('%,' || id || ',%')) \
                 ORDER BY name",
            )
            .bind(filter)
            .fetch_all(pool)
            .await?
        });
        rows.into_iter()
            .map(|(id, name)| {
                Ok(TenantRow {
                    id: parse_id("tenant", &id)?,
                    name,
                })
            })
            .collect()
    }

    /// Creates a tenant. MSP administrators only.
    pub async fn create_tenant(&self, _admin: &AdminScope, name: &str, by: &Actor) -> Result<TenantId, StoreError> {
        super::tenants::validate_name("tenant", name).map_err(StoreError::Invalid)?;
        let id = TenantId::random();
        let event = AuditEvent::success(Some(id), "tenant.create", format!("tenant {name}"));
        on_pool!(self, RowScope::All, pool, Db => {
            let mut tx = pool.begin().await?;
            let n = sqlx::query("INSERT INTO tenants (id, name, created_at_ms) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING")
                .bind(id.to_string())
                .bind(name)
                .bind(now_ms())
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if n == 0 {
                return Err(StoreError::Conflict(format!("a tenant named {name:?} exists")));
            }
            <Db as AppendAudit>::append(&mut tx, by, std::slice::from_ref(&event)).await?;
            tx.commit().await?;
        });
        Ok(id)
    }

    /// Renames a tenant. MSP administrators only.
    pub async fn rename_tenant(
        &self,
        _admin: &AdminScope,
        tenant: TenantId,
        name: &str,
        by: &Actor,
    ) -> Result<(), StoreError> {
        super::tenants::validate_name("tenant", name).map_err(StoreError::Invalid)?;
        let event = AuditEvent::success(Some(tenant), "tenant.rename", format!("tenant {name}"));
        let result = on_pool!(self, RowScope::All, pool, Db => {
            let mut tx = pool.begin().await?;
            let n = sqlx::query("UPDATE tenants SET name = $1 WHERE id = $2")
                .bind(name)
                .bind(tenant.to_string())
                .execute(&mut *tx)
                .await
                .map(|r| r.rows_affected());
            if let Ok(1..) = n {
                <Db as AppendAudit>::append(&mut tx, by, std::slice::from_ref(&event)).await?;
                tx.commit().await?;
            }
            n
        });
        match result {
            Ok(0) => Err(StoreError::NotFound(format!("tenant {tenant}"))),
            Ok(_) => Ok(()),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                Err(StoreError::Conflict(format!("a tenant named {name:?} exists")))
            }
            Err(e) => Err(e.into()),
        }
    }
}

/// An enrollment token as the console lists it (never its secret).
#[derive(Clone, Debug)]
pub struct TokenRow {
    /// Public id.
    pub id: String,
    /// Tenant.
    pub tenant: TenantId,
    /// Tenant name.
    pub tenant_name: String,
    /// Site name.
    pub site_name: String,
    /// Created, Unix ms.
    pub created_at_ms: i64,
    /// Expires, Unix ms.
    pub expires_at_ms: i64,
    /// Used, Unix ms.
    pub used_at_ms: Option<i64>,
}

impl Store {
    /// Creates a live site in the scope's tenant.
    pub async fn create_site(
        &self,
        scope: &TenantScope,
        name: &str,
        by: &Actor,
    ) -> Result<outpost_certs::SiteId, StoreError> {
        super::tenants::validate_name("site", name).map_err(StoreError::Invalid)?;
        let id = outpost_certs::SiteId::random();
        let event = AuditEvent::success(Some(scope.tenant()), "site.create", format!("site {name}"));
        let n = on_pool!(self, RowScope::tenant(scope), pool, Db => {
            let mut tx = pool.begin().await?;
            let n = sqlx::query(
                "INSERT INTO sites (id, tenant_id, name, created_at_ms) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (tenant_id, name) WHERE deleted_at_ms IS NULL DO NOTHING",
            )
            .bind(id.to_string())
            .bind(scope.tenant().to_string())
            .bind(name)
            .bind(now_ms())
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if n == 1 {
                <Db as AppendAudit>::append(&mut tx, by, std::slice::from_ref(&event)).await?;
                tx.commit().await?;
            }
            n
        });
        if n == 0 {
            return Err(StoreError::Conflict(format!(
                "a site named {name:?} exists in this tenant"
            )));
        }
        Ok(id)
    }

    /// Deletes a site of the scope's tenant, as [`Store::delete_site`] does
    /// (tokens stop working, agents revoked); returns how many agents were revoked.
    pub async fn delete_site_in(
        &self,
        scope: &TenantScope,
        site: outpost_certs::SiteId,
        actor: &super::audit::Actor,
    ) -> Result<u64, StoreError> {
        let names: Option<(String, String)> = on_pool!(self, RowScope::tenant(scope), pool, _Db => {
            sqlx::query_as(
                "SELECT t.name, s.name FROM sites s JOIN tenants t ON t.id = s.tenant_id \
                 WHERE s.id = $1 AND s.tenant_id = $2 AND s.deleted_at_ms IS NULL",
            )
            .bind(site.to_string())
            .bind(scope.tenant().to_string())
            .fetch_optional(pool)
            .await?
        });
        let Some((tenant, name)) = names else {
            return Err(StoreError::NotFound(format!("site {site}")));
        };
        Ok(self
            .delete_site(&AdminScope::verified(), &tenant, &name, actor)
            .await?
            .1)
    }

    /// Stores a new enrollment token for a live site of the scope's tenant;
    /// returns its expiry in Unix ms.
    pub async fn create_site_token(
        &self,
        scope: &TenantScope,
        site: outpost_certs::SiteId,
        token: &outpost_certs::token::EnrollmentToken,
        ttl: std::time::Duration,
        actor: &super::audit::Actor,
    ) -> Result<i64, StoreError> {
        let live: Option<(String,)> = on_pool!(self, RowScope::tenant(scope), pool, _Db => {
            sqlx::query_as("SELECT id FROM sites WHERE id = $1 AND tenant_id = $2 AND deleted_at_ms IS NULL")
                .bind(site.to_string())
                .bind(scope.tenant().to_string())
                .fetch_optional(pool)
                .await?
        });
        if live.is_none() {
            return Err(StoreError::NotFound(format!("site {site}")));
        }
        let ensured = super::tenants::EnsuredSite {
            tenant: scope.tenant(),
            site,
            tenant_created: false,
            site_created: false,
        };
        self.create_token(&AdminScope::verified(), &ensured, token, ttl, actor)
            .await
    }

    /// Enrollment tokens of the viewer's tenants, newest first.
    pub async fn list_tokens(&self, viewer: &Viewer) -> Result<Vec<TokenRow>, StoreError> {
        /// id, tenant, tenant name, site name, created, expires, used.
        type Row = (String, String, String, String, i64, i64, Option<i64>);
        let rows: Vec<Row> = on_pool!(self, RowScope::viewer(viewer), pool, _Db => {
            sqlx::query_as(
                "SELECT e.id, e.tenant_id, t.name, s.name, e.created_at_ms, e.expires_at_ms, e.used_at_ms \
                 FROM enrollment_tokens e JOIN tenants t ON t.id = e.tenant_id JOIN sites s ON s.id = e.site_id \
                 WHERE ($1 IS NULL OR (',' || $1 || ',') LIKE ('%,' || e.tenant_id || ',%')) \
                 ORDER BY e.created_at_ms DESC, e.id",
            )
            .bind(viewer.tenant_filter())
            .fetch_all(pool)
            .await?
        });
        rows.into_iter()
            .map(
                |(id, t, tenant_name, site_name, created_at_ms, expires_at_ms, used_at_ms)| {
                    Ok(TokenRow {
                        id,
                        tenant: parse_id("tenant", &t)?,
                        tenant_name,
                        site_name,
                        created_at_ms,
                        expires_at_ms,
                        used_at_ms,
                    })
                },
            )
            .collect()
    }

    /// The tenant of an enrollment token the viewer may see.
    pub async fn token_tenant(&self, viewer: &Viewer, id: &str) -> Result<TenantId, StoreError> {
        let row: Option<(String,)> = on_pool!(self, RowScope::viewer(viewer), pool, _Db => {
            sqlx::query_as(
                "SELECT tenant_id FROM enrollment_tokens WHERE id = $1 \
                 AND ($2 IS NULL OR (',' || $2 || ',') LIKE ('%,' || tenant_id || ',%'))",
            )
            .bind(id)
            .bind(viewer.tenant_filter())
            .fetch_optional(pool)
            .await?
        });
        let (t,) = row.ok_or_else(|| StoreError::NotFound(format!("enrollment token {id}")))?;
        parse_id("tenant", &t)
    }

    /// Revokes an unused token of the scope's tenant (it is deleted: nothing
    /// refers to an unused token). `Conflict` if it was used.
    pub async fn revoke_token(&self, scope: &TenantScope, id: &str, by: &Actor) -> Result<(), StoreError> {
        let event = AuditEvent::success(Some(scope.tenant()), "token.revoke", format!("token {id}"));
        on_pool!(self, RowScope::tenant(scope), pool, Db => {
            let mut tx = pool.begin().await?;
            let row: Option<(Option<i64>,)> = sqlx::query_as(
                "SELECT used_at_ms FROM enrollment_tokens WHERE id = $1 AND tenant_id = $2",
            )
            .bind(id)
            .bind(scope.tenant().to_string())
            .fetch_optional(&mut *tx)
            .await?;
            match row {
                None => return Err(StoreError::NotFound(format!("enrollment token {id}"))),
                Some((Some(_),)) => return Err(StoreError::Conflict("the token was already used".into())),
                Some((None,)) => {}
            }
            sqlx::query("DELETE FROM enrollment_tokens WHERE id = $1 AND tenant_id = $2 AND used_at_ms IS NULL")
                .bind(id)
                .bind(scope.tenant().to_string())
                .execute(&mut *tx)
                .await?;
            <Db as AppendAudit>::append(&mut tx, by, std::slice::from_ref(&event)).await?;
            tx.commit().await?;
        });
        Ok(())
    }

    /// Revokes an agent of the scope's tenant. Returns false if it was already revoked.
    pub async fn revoke_agent_in(
        &self,
        scope: &TenantScope,
        agent: outpost_certs::AgentId,
        actor: &super::audit::Actor,
    ) -> Result<bool, StoreError> {
        let row: Option<(String,)> = on_pool!(self, RowScope::tenant(scope), pool, _Db => {
            sqlx::query_as("SELECT id FROM agents WHERE id = $1 AND tenant_id = $2")
                .bind(agent.to_string())
                .bind(scope.tenant().to_string())
                .fetch_optional(pool)
                .await?
        });
        if row.is_none() {
            return Err(StoreError::NotFound(format!("agent {agent}")));
        }
        self.revoke_agent(&AdminScope::verified(), agent, actor).await
    }
}
