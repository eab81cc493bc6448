//! API tokens on every engine.
use super::api_tokens::*;
use super::tests::engines;
use super::{AdminScope, Store};
use crate::row_scope::RowScope;

async fn user_id(store: &Store, name: &str) -> String {
    store
        .set_admin_password(
            &AdminScope::verified(),
            name,
            "correct horse battery",
            &super::audit::Actor::local_operator(),
        )
        .await
        .expect("user");
    sqlx_user_id(store, name).await
}

async fn sqlx_user_id(store: &Store, name: &str) -> String {
    super::on_pool!(store, RowScope::All, pool, _Db => {
        sqlx::query_scalar("SELECT id FROM users WHERE username = $1")
            .bind(name)
            .fetch_one(pool)
            .await
            .expect("user id")
    })
}

async fn set_column(store: &Store, id: &str, column: &str, value: i64) {
    let sql = format!("UPDATE api_tokens SET {column} = $1 WHERE id = $2");
    super::on_pool!(store, RowScope::All, pool, _Db => {
        sqlx::query(sqlx::AssertSqlSafe(sql)).bind(value).bind(id).execute(pool).await.expect("update");
    });
}

#[tokio::test]
async fn a_token_verifies_until_it_is_revoked_or_expires() {
    for store in &engines().await.stores {
        let admin = AdminScope::verified();
        let owner = user_id(store, "ops").await;
        let acme = store.ensure_site(&admin, "acme", "hq").await.expect("site");
        let scope = admin.tenant_scope(acme.tenant);
        let (row, token) = store
            .create_api_token(
                &NewApiToken {
                    name: "psa-sync",
                    scope: TokenScope::Read,
                    binding: TokenBinding::Tenant(scope),
                    created_by: &owner,
                    ttl_ms: DEFAULT_TTL_MS,
                },
                &super::audit::Actor::local_operator(),
            )
            .await
            .expect("create");
        assert!(token.starts_with(PREFIX));
        assert_eq!(row.tenant, Some(acme.tenant));
        assert_eq!(row.created_by_name, "ops");
        assert_eq!(row.last_used_ms, None);

        let verified = store.verify_api_token(&token).await.expect("verifies");
        assert_eq!(verified.scope, TokenScope::Read);
        assert_eq!(verified.tenant, Some(acme.tenant));
        assert_eq!(verified.user_id, owner);
        let listed = store.tenant_api_tokens(&scope).await.expect("list");
        assert_eq!(listed.len(), 1);
        assert!(listed[0].last_used_ms.is_some(), "the use is recorded");

        // Same id, another secret with valid check characters: unknown, not malformed.
        let body = format!("{PREFIX}{}_{}", row.id, "A".repeat(32));
        let forged = format!("{body}{}", super::api_tokens::tests_support::check(&body));
        assert!(matches!(
            store.verify_api_token(&forged).await,
            Err(TokenCheckError::Refused(TokenRefused::Unknown))
        ));

        set_column(store, &row.id, "expires_at_ms", 1).await;
        assert!(matches!(
            store.verify_api_token(&token).await,
            Err(TokenCheckError::Refused(TokenRefused::Expired))
        ));
        set_column(store, &row.id, "expires_at_ms", i64::MAX).await;
        store.verify_api_token(&token).await.expect("valid again");

        store
            .revoke_api_token(
                TokenBinding::Tenant(scope),
                &row.id,
                &super::audit::Actor::local_operator(),
            )
            .await
            .expect("revoke");
        assert!(matches!(
            store.verify_api_token(&token).await,
            Err(TokenCheckError::Refused(TokenRefused::Revoked))
        ));
    }
}

#[tokio::test]
async fn another_tenant_cannot_see_or_revoke_a_token() {
    for store in &engines().await.stores {
        let admin = AdminScope::verified();
        let owner = user_id(store, "ops").await;
        let acme = admin.tenant_scope(store.ensure_site(&admin, "acme", "hq").await.expect("a").tenant);
        let globex = admin.tenant_scope(store.ensure_site(&admin, "globex", "hq").await.expect("b").tenant);
        let (row, token) = store
            .create_api_token(
                &NewApiToken {
                    name: "acme-sync",
                    scope: TokenScope::Operate,
                    binding: TokenBinding::Tenant(acme),
                    created_by: &owner,
                    ttl_ms: DEFAULT_TTL_MS,
                },
                &super::audit::Actor::local_operator(),
            )
            .await
            .expect("create");
        let (msp, _) = store
            .create_api_token(
                &NewApiToken {
                    name: "everything",
                    scope: TokenScope::Admin,
                    binding: TokenBinding::MspWide(admin),
                    created_by: &owner,
                    ttl_ms: DEFAULT_TTL_MS,
                },
                &super::audit::Actor::local_operator(),
            )
            .await
            .expect("create msp-wide");
        assert_eq!(msp.tenant, None);
        assert!(store.tenant_api_tokens(&globex).await.expect("list").is_empty());
        assert_eq!(
            store.tenant_api_tokens(&acme).await.expect("list").len(),
            1,
            "MSP-wide tokens are not a tenant's"
        );
        assert_eq!(store.all_api_tokens(&admin).await.expect("all").len(), 2);
        assert!(matches!(
            store
                .revoke_api_token(
                    TokenBinding::Tenant(globex),
                    &row.id,
                    &super::audit::Actor::local_operator()
                )
                .await,
            Err(super::StoreError::NotFound(_))
        ));
        store.verify_api_token(&token).await.expect("still valid");
    }
}

#[tokio::test]
async fn a_token_needs_a_real_creator_a_name_and_a_sane_lifetime() {
    for store in &engines().await.stores {
        let admin = AdminScope::verified();
        let owner = user_id(store, "ops").await;
        let base = NewApiToken {
            name: "x",
            scope: TokenScope::Read,
            binding: TokenBinding::MspWide(admin),
            created_by: &owner,
            ttl_ms: DEFAULT_TTL_MS,
        };
        let nobody = NewApiToken {
            created_by: "no-such-user",
            ..base.clone()
        };
        assert!(matches!(
            store
                .create_api_token(&nobody, &super::audit::Actor::local_operator())
                .await,
            Err(super::StoreError::NotFound(_))
        ));
        for bad in [
            NewApiToken {
                name: " ",
                ..base.clone()
            },
            NewApiToken {
                name: "a\nb",
                ..base.clone()
            },
            NewApiToken {
                ttl_ms: 0,
                ..base.clone()
            },
            NewApiToken {
                ttl_ms: MAX_TTL_MS + 1,
                ..base.clone()
            },
        ] {
            assert!(
                matches!(
                    store
                        .create_api_token(&bad, &super::audit::Actor::local_operator())
                        .await,
                    Err(super::StoreError::Conflict(_))
                ),
                "{bad:?}"
            );
        }
        assert!(
            store.all_api_tokens(&admin).await.expect("all").is_empty(),
            "nothing half-made"
        );
    }
}
