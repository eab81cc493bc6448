//! Users, roles and the second factor, on every engine (see `tests.rs`).
use super::members::{Denied, NewUser, Principal, Role};
use super::scope::Viewer;
use super::second_factor::Purpose;
use super::tests::engines;
use super::*;

/// Signs in with a password only (no second step).
async fn verified(store: &Store, username: &str, password: &str) -> Option<users::VerifiedUser> {
    let credential = store.credential(username).await.expect("credential");
    let password = password.to_owned();
    tokio::task::spawn_blocking(move || credential.verify(&password))
        .await
        .expect("hashing task")
}

async fn principal_of(store: &Store, username: &str, password: &str) -> Principal {
    let user = verified(store, username, password).await.expect("password accepted");
    let token = store
        .open_session(user, &crate::audit::Actor::local_operator())
        .await
        .expect("session");
    store.session(&token).await.expect("lookup").expect("live").principal
}

#[test]
fn roles_are_ordered() {
    assert!(Role::Viewer < Role::Operator && Role::Operator < Role::Admin);
    assert_eq!("operator".parse::<Role>(), Ok(Role::Operator));
    assert!("root".parse::<Role>().is_err());
}

#[tokio::test]
async fn memberships_give_roles_per_tenant_and_nothing_else() {
    let e = engines().await;
    for store in &e.stores {
        let admin = AdminScope::verified();
        let operator = Principal::local_operator(&admin);
        let a = store
            .create_tenant(&admin, "Acme", &crate::audit::Actor::local_operator())
            .await
            .expect("tenant");
        let b = store
            .create_tenant(&admin, "Globex", &crate::audit::Actor::local_operator())
            .await
            .expect("tenant");
        let c = store
            .create_tenant(&admin, "Initech", &crate::audit::Actor::local_operator())
            .await
            .expect("tenant");
        store.ensure_site(&admin, "Acme", "HQ").await.expect("site");
        store.ensure_site(&admin, "Globex", "Plant").await.expect("site");
        let ann = store
            .create_user(
                &operator,
                "ann",
                "password-ann",
                NewUser::Member(a, Role::Viewer),
                &crate::audit::Actor::local_operator(),
            )
            .await
            .expect("ann");
        store
            .set_role(
                &operator,
                &ann,
                b,
                Some(Role::Admin),
                &crate::audit::Actor::local_operator(),
            )
            .await
            .expect("role");

        let p = principal_of(store, "ann", "password-ann").await;
        assert!(!p.is_msp_admin());
        assert_eq!(p.role_in(a), Some(Role::Viewer));
        assert_eq!(p.role_in(b), Some(Role::Admin));
        assert_eq!(p.role_in(c), None);
        assert_eq!(p.authorize(a, Role::Operator), Err(Denied::Forbidden));
        assert_eq!(p.authorize(c, Role::Viewer), Err(Denied::NotFound));
        assert_eq!(p.authorize(b, Role::Admin).expect("admin of b").tenant(), b);
        // Reads see exactly the member tenants.
        let sites = store.sites(&p.viewer()).await.expect("sites");
        let names: Vec<_> = sites.iter().map(|s| s.tenant_name.as_str()).collect();
        assert_eq!(names, ["Acme", "Globex"], "{store:?}");
        let tenants: Vec<_> = store
            .list_tenants(&p)
            .await
            .expect("tenants")
            .into_iter()
            .map(|t| t.name)
            .collect();
        assert_eq!(tenants, ["Acme", "Globex"]);

        // Removing a role takes the tenant away at the next session check.
        store
            .set_role(&operator, &ann, b, None, &crate::audit::Actor::local_operator())
            .await
            .expect("remove");
        let p = principal_of(store, "ann", "password-ann").await;
        assert_eq!(p.role_in(b), None);
        let sites = store.sites(&p.viewer()).await.expect("sites");
        assert!(sites.iter().all(|s| s.tenant == a));

        // A user with no membership sees nothing.
        store
            .create_user(
                &operator,
                "nobody",
                "password-nobody",
                NewUser::Member(c, Role::Viewer),
                &crate::audit::Actor::local_operator(),
            )
            .await
            .expect("user");
        let nobody = store.user_id_by_name("nobody").await.expect("id");
        store
            .set_role(&operator, &nobody, c, None, &crate::audit::Actor::local_operator())
            .await
            .expect("remove");
        let p = principal_of(store, "nobody", "password-nobody").await;
        assert!(matches!(p.viewer(), Viewer::Tenants(ref set) if set.tenants().is_empty()));
        assert!(store.sites(&p.viewer()).await.expect("sites").is_empty());
        assert!(store.list_agents(&p.viewer()).await.expect("agents").is_empty());
    }
}

#[tokio::test]
async fn tenant_admins_manage_only_their_tenants() {
    let e = engines().await;
    for store in &e.stores {
        let admin = AdminScope::verified();
        let operator = Principal::local_operator(&admin);
        let a = store
            .create_tenant(&admin, "Acme", &crate::audit::Actor::local_operator())
            .await
            .expect("tenant");
        let b = store
            .create_tenant(&admin, "Globex", &crate::audit::Actor::local_operator())
            .await
            .expect("tenant");
        store
            .create_user(
                &operator,
                "boss",
                "password-boss",
                NewUser::Member(a, Role::Admin),
                &crate::audit::Actor::local_operator(),
            )
            .await
            .expect("boss");
        let boss = principal_of(store, "boss", "password-boss").await;
        // May create members of A, not of B, and no MSP administrators.
        let worker = store
            .create_user(
                &boss,
                "worker",
                "password-w",
                NewUser::Member(a, Role::Viewer),
                &crate::audit::Actor::local_operator(),
            )
            .await
            .expect("worker");
        assert!(matches!(
            store
                .create_user(
                    &boss,
                    "spy",
                    "password-s",
                    NewUser::Member(b, Role::Viewer),
                    &crate::audit::Actor::local_operator()
                )
                .await,
            Err(StoreError::NotFound(_))
        ));
        assert!(matches!(
            store
                .create_user(
                    &boss,
                    "root",
                    "password-r",
                    NewUser::MspAdmin,
                    &crate::audit::Actor::local_operator()
                )
                .await,
            Err(StoreError::Forbidden(_))
        ));
        // A user of B only is invisible to A's admin.
        let other = store
            .create_user(
                &operator,
                "other",
                "password-o",
                NewUser::Member(b, Role::Viewer),
                &crate::audit::Actor::local_operator(),
            )
            .await
            .expect("other");
        let listed: Vec<_> = store
            .list_users(&boss)
            .await
            .expect("users")
            .into_iter()
            .map(|u| u.username)
            .collect();
        assert_eq!(listed, ["boss", "worker"]);
        assert!(matches!(
            store
                .reset_password(&boss, &other, "new-password", &crate::audit::Actor::local_operator())
                .await,
            Err(StoreError::NotFound(_))
        ));
        assert!(matches!(
            store
                .delete_user(&boss, &other, &crate::audit::Actor::local_operator())
                .await,
            Err(StoreError::NotFound(_))
        ));
        // A user shared with B is visible but not A's admin's alone to manage.
        store
            .set_role(
                &operator,
                &worker,
                b,
                Some(Role::Viewer),
                &crate::audit::Actor::local_operator(),
            )
            .await
            .expect("role");
        assert!(matches!(
            store
                .reset_password(&boss, &worker, "new-password", &crate::audit::Actor::local_operator())
                .await,
            Err(StoreError::Forbidden(_))
        ));
        store
            .set_role(&operator, &worker, b, None, &crate::audit::Actor::local_operator())
            .await
            .expect("role");
        // Resetting a password ends the user's sessions.
        let user = verified(store, "worker", "password-w").await.expect("password");
        let token = store
            .open_session(user, &crate::audit::Actor::local_operator())
            .await
            .expect("session");
        store
            .reset_password(&boss, &worker, "new-password", &crate::audit::Actor::local_operator())
            .await
            .expect("reset");
        assert!(store.session(&token).await.expect("lookup").is_none());
        // Disabled users cannot sign in.
        store
            .set_disabled(&boss, &worker, true, &crate::audit::Actor::local_operator())
            .await
            .expect("disable");
        assert!(verified(store, "worker", "new-password").await.is_none());
        store
            .set_disabled(&boss, &worker, false, &crate::audit::Actor::local_operator())
            .await
            .expect("enable");
        assert!(verified(store, "worker", "new-password").await.is_some());
        // Tenant admins cannot promote anyone to MSP administrator.
        assert!(matches!(
            store
                .set_msp_admin(&boss, &worker, true, &crate::audit::Actor::local_operator())
                .await,
            Err(StoreError::Forbidden(_))
        ));
        store
            .delete_user(&boss, &worker, &crate::audit::Actor::local_operator())
            .await
            .expect("delete");
        assert!(matches!(
            store.user_id_by_name("worker").await,
            Err(StoreError::NotFound(_))
        ));
    }
}

#[tokio::test]
async fn totp_steps_are_accepted_once_and_only_later_ones() {
    let e = engines().await;
    for store in &e.stores {
        let admin = AdminScope::verified();
        store
            .set_admin_password(&admin, "admin", "correct horse", &crate::audit::Actor::local_operator())
            .await
            .expect("admin");
        let id = store.user_id_by_name("admin").await.expect("id");
        store.set_pending_totp(&id, b"sealed-secret").await.expect("pending");
        // A confirmation with a stale pending secret changes nothing.
        assert!(store.confirm_totp(&id, b"other", 100).await.expect("confirm").is_none());
        let codes = store
            .confirm_totp(&id, b"sealed-secret", 100)
            .await
            .expect("confirm")
            .expect("codes");
        assert_eq!(codes.len(), second_factor::RECOVERY_CODES);

        let user = verified(store, "admin", "correct horse").await.expect("password");
        assert!(store.has_totp(&user).await.expect("has"));
        let challenge = store.begin_challenge(user, Purpose::Code).await.expect("challenge");
        // The half-way state is not a session.
        assert!(store.session(&challenge).await.expect("lookup").is_none());
        // The enrolment step itself (100) and earlier ones are refused.
        assert!(
            store
                .complete_with_code(&challenge, 100, &crate::audit::Actor::local_operator())
                .await
                .expect("code")
                .is_none()
        );
        assert!(
            store
                .complete_with_code(&challenge, 99, &crate::audit::Actor::local_operator())
                .await
                .expect("code")
                .is_none()
        );
        // The challenge survives a wrong code; a later step opens the session.
        let session = store
            .complete_with_code(&challenge, 101, &crate::audit::Actor::local_operator())
            .await
            .expect("code")
            .expect("session");
        assert!(store.session(&session).await.expect("lookup").is_some());
        // The challenge is used up.
        assert!(store.challenge(&challenge).await.expect("lookup").is_none());
        assert!(
            store
                .complete_with_code(&challenge, 102, &crate::audit::Actor::local_operator())
                .await
                .expect("code")
                .is_none()
        );
        // A new sign-in cannot replay step 101.
        let user = verified(store, "admin", "correct horse").await.expect("password");
        let again = store.begin_challenge(user, Purpose::Code).await.expect("challenge");
        assert!(
            store
                .complete_with_code(&again, 101, &crate::audit::Actor::local_operator())
                .await
                .expect("code")
                .is_none()
        );
        // The signed-in re-confirmation follows the same rule.
        assert!(!store.accept_totp_step(&id, 101).await.expect("step"));
        assert!(store.accept_totp_step(&id, 102).await.expect("step"));
        assert!(
            store
                .complete_with_code(&again, 102, &crate::audit::Actor::local_operator())
                .await
                .expect("code")
                .is_none()
        );
        assert!(
            store
                .complete_with_code(&again, 103, &crate::audit::Actor::local_operator())
                .await
                .expect("code")
                .is_some()
        );
    }
}

#[tokio::test]
async fn recovery_codes_work_once_and_regenerating_voids_them() {
    let e = engines().await;
    for store in &e.stores {
        let admin = AdminScope::verified();
        store
            .set_admin_password(&admin, "admin", "correct horse", &crate::audit::Actor::local_operator())
            .await
            .expect("admin");
        let id = store.user_id_by_name("admin").await.expect("id");
        store.set_pending_totp(&id, b"sealed").await.expect("pending");
        let codes = store
            .confirm_totp(&id, b"sealed", 1)
            .await
            .expect("confirm")
            .expect("codes");
        assert_eq!(store.totp_state(&id).await.expect("state").recovery_left, 10);

        let sign_in = || async {
            let user = verified(store, "admin", "correct horse").await.expect("password");
            store.begin_challenge(user, Purpose::Code).await.expect("challenge")
        };
        let c = sign_in().await;
        assert!(
            store
                .complete_with_recovery(&c, "not-a-code", &crate::audit::Actor::local_operator())
                .await
                .expect("recovery")
                .is_none()
        );
        // Case and dashes do not matter.
        let typed = codes[0].to_uppercase().replace('-', "");
        assert!(
            store
                .complete_with_recovery(&c, &typed, &crate::audit::Actor::local_operator())
                .await
                .expect("recovery")
                .is_some()
        );
        let c = sign_in().await;
        assert!(
            store
                .complete_with_recovery(&c, &codes[0], &crate::audit::Actor::local_operator())
                .await
                .expect("recovery")
                .is_none(),
            "used once"
        );
        assert_eq!(store.totp_state(&id).await.expect("state").recovery_left, 9);

        let fresh = store.regenerate_recovery_codes(&id).await.expect("regenerate");
        assert!(
            store
                .complete_with_recovery(&c, &codes[1], &crate::audit::Actor::local_operator())
                .await
                .expect("recovery")
                .is_none(),
            "voided"
        );
        assert!(
            store
                .complete_with_recovery(&c, &fresh[0], &crate::audit::Actor::local_operator())
                .await
                .expect("recovery")
                .is_some()
        );

        // Resetting the second factor removes secret and codes.
        store
            .reset_second_factor(
                &Principal::local_operator(&admin),
                &id,
                &crate::audit::Actor::local_operator(),
            )
            .await
            .expect("reset");
        let state = store.totp_state(&id).await.expect("state");
        assert!(state.sealed.is_none() && state.recovery_left == 0);
    }
}

#[tokio::test]
async fn a_password_reset_grants_no_role() {
    let e = engines().await;
    for store in &e.stores {
        let admin = AdminScope::verified();
        let a = store
            .create_tenant(&admin, "Acme", &crate::audit::Actor::local_operator())
            .await
            .expect("tenant");
        store
            .create_user(
                &Principal::local_operator(&admin),
                "vera",
                "password-v",
                NewUser::Member(a, Role::Viewer),
                &crate::audit::Actor::local_operator(),
            )
            .await
            .expect("vera");
        store
            .set_admin_password(
                &admin,
                "vera",
                "another-password",
                &crate::audit::Actor::local_operator(),
            )
            .await
            .expect("reset");
        let p = principal_of(store, "vera", "another-password").await;
        assert!(!p.is_msp_admin());
        assert_eq!(p.role_in(a), Some(Role::Viewer));
        // A new name is created as an MSP administrator, as `init` does.
        store
            .set_admin_password(&admin, "root", "root-password", &crate::audit::Actor::local_operator())
            .await
            .expect("new");
        assert!(principal_of(store, "root", "root-password").await.is_msp_admin());
    }
}

#[tokio::test]
async fn totp_requirement_is_a_stored_setting() {
    let e = engines().await;
    for store in &e.stores {
        let admin = AdminScope::verified();
        assert!(!store.totp_required().await.expect("get"));
        store
            .set_totp_required(&admin, true, &crate::audit::Actor::local_operator())
            .await
            .expect("set");
        assert!(store.totp_required().await.expect("get"));
        store
            .set_totp_required(&admin, false, &crate::audit::Actor::local_operator())
            .await
            .expect("set");
        assert!(!store.totp_required().await.expect("get"));
    }
}

#[tokio::test]
async fn user_role_and_tenant_changes_are_in_the_audit_log_and_the_chain_holds() {
    let e = engines().await;
    for store in &e.stores {
        let admin = AdminScope::verified();
        let operator = Principal::local_operator(&admin);
        let by = crate::audit::Actor::user("ada", Some("192.0.2.7".parse().expect("ip")));
        let acme = store.create_tenant(&admin, "Acme", &by).await.expect("tenant");
        store
            .rename_tenant(&admin, acme, "Acme Ltd", &by)
            .await
            .expect("rename");
        store
            .create_site(&admin.tenant_scope(acme), "hq", &by)
            .await
            .expect("site");
        let vera = store
            .create_user(
                &operator,
                "vera",
                "long enough password",
                NewUser::Member(acme, Role::Viewer),
                &by,
            )
            .await
            .expect("user");
        store
            .set_role(&operator, &vera, acme, Some(Role::Operator), &by)
            .await
            .expect("role");
        store.set_msp_admin(&operator, &vera, true, &by).await.expect("msp");
        store
            .reset_password(&operator, &vera, "another long password", &by)
            .await
            .expect("password");
        store.set_disabled(&operator, &vera, true, &by).await.expect("disable");
        store
            .reset_second_factor(&operator, &vera, &by)
            .await
            .expect("totp reset");
        store.set_totp_required(&admin, true, &by).await.expect("require");
        store.delete_user(&operator, &vera, &by).await.expect("delete");
        // A refused change leaves no record.
        assert!(store.create_tenant(&admin, "Acme Ltd", &by).await.is_err());

        let records = store
            .audit_records(
                &Viewer::Admin(admin),
                &crate::audit::AuditQuery {
                    from_ms: 0,
                    to_ms: i64::MAX,
                    tenant: None,
                    after_seq: 0,
                    limit: 100,
                    newest_first: false,
                },
            )
            .await
            .expect("records");
        let actions: Vec<&str> = records.iter().map(|r| r.action.as_str()).collect();
        assert_eq!(
            actions,
            [
                "tenant.create",
                "tenant.rename",
                "site.create",
                "user.create",
                "user.role",
                "user.msp_admin",
                "user.set_password",
                "user.disable",
                "user.reset_second_factor",
                "settings.require_totp",
                "user.delete",
            ]
        );
        assert!(
            records
                .iter()
                .all(|r| r.actor == "ada" && r.source.as_deref() == Some("192.0.2.7"))
        );
        assert!(records[4].details.contains("operator"), "{:?}", records[4]);
        let report = store.verify_audit_chain(&admin).await.expect("verify");
        assert!(report.broken.is_none(), "{report:?}");
        assert_eq!(report.checked, 11);
    }
}

#[tokio::test]
async fn live_sessions_carry_each_users_current_tenants() {
    let e = engines().await;
    for store in &e.stores {
        let admin = AdminScope::verified();
        let operator = Principal::local_operator(&admin);
        let by = crate::audit::Actor::local_operator();
        let a = store.create_tenant(&admin, "Acme", &by).await.expect("tenant");
        let b = store.create_tenant(&admin, "Globex", &by).await.expect("tenant");
        let ann = store
            .create_user(&operator, "ann", "password-ann", NewUser::Member(a, Role::Viewer), &by)
            .await
            .expect("user");
        let user = verified(store, "ann", "password-ann").await.expect("password accepted");
        let token = store.open_session(user, &by).await.expect("session");
        let key = users::SessionKey::of(&token);
        let sees = |viewer: Option<&Viewer>, tenant| viewer.is_some_and(|v| v.sees(tenant));

        let live = store.live_sessions().await.expect("live");
        assert!(sees(live.get(&key), a) && !sees(live.get(&key), b), "{store:?}");
        // Moved from Acme to Globex: the same session now sees Globex only.
        store
            .set_role(&operator, &ann, b, Some(Role::Operator), &by)
            .await
            .expect("role");
        store.set_role(&operator, &ann, a, None, &by).await.expect("role");
        let live = store.live_sessions().await.expect("live");
        assert!(!sees(live.get(&key), a) && sees(live.get(&key), b), "{store:?}");
        // No tenant left: still signed in, sees nothing.
        store.set_role(&operator, &ann, b, None, &by).await.expect("role");
        let live = store.live_sessions().await.expect("live");
        assert!(live.contains_key(&key) && !sees(live.get(&key), a) && !sees(live.get(&key), b));
    }
}
