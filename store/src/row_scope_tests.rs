//! Row-level security on PostgreSQL: queries that leave out their tenant
//! filter on purpose, writes aimed at another tenant, and the settings every
//! deployment must have (forced policies on every tenant table, an
//! application role that is neither owner, superuser nor `BYPASSRLS`).
use outpost_certs::ca::CertificateAuthority;

use super::tests::{engines, enrolled, metrics_batch};
use super::*;
use crate::row_scope::RowScope;

/// The PostgreSQL stores of the suite (none when it runs on SQLite only).
fn postgres(stores: &[Store]) -> impl Iterator<Item = &Store> {
    stores.iter().filter(|s| s.engine() == "postgres")
}

/// `sql` as `scope` sees it: the rows' first column.
async fn column(store: &Store, scope: RowScope, sql: &str) -> Vec<String> {
    on_pool!(store, scope, pool, _Db => {
        sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned())).fetch_all(pool).await.expect(sql)
    })
}

/// Every table of the schema with a column naming a tenant's object.
async fn tenant_tables(store: &Store) -> Vec<(String, String)> {
    column(
        store,
        RowScope::All,
        "SELECT DISTINCT table_name || ':' || column_name FROM information_schema.columns \
         WHERE table_schema = 'public' AND column_name IN ('tenant_id', 'device_id', 'host_id', 'series_id') \
         ORDER BY 1",
    )
    .await
    .into_iter()
    .filter_map(|s| s.split_once(':').map(|(t, c)| (t.to_owned(), c.to_owned())))
    .collect()
}

#[tokio::test]
async fn a_query_without_its_tenant_filter_sees_only_its_own_tenants_rows() {
    let ca = CertificateAuthority::generate("test").expect("ca");
    let engines = engines().await;
    for store in postgres(&engines.stores) {
        let acme = enrolled(store, &ca, "acme", "hq").await.0;
        let globex = enrolled(store, &ca, "globex", "hq").await.0;
        for agent in [&acme, &globex] {
            store.ingest(agent, &metrics_batch(1..=3)).await.expect("ingest");
        }
        let (a, g) = (acme.tenant().to_string(), globex.tenant().to_string());
        let mine = RowScope::tenant(&acme.tenant_scope());
        // Each of these forgets its WHERE on purpose.
        for table in ["tenants", "sites", "enrollment_tokens", "agents", "metric_samples"] {
            let column_name = if table == "tenants" { "id" } else { "tenant_id" };
            let sql = format!("SELECT DISTINCT {column_name} FROM {table}");
            assert_eq!(
                column(store, mine.clone(), &sql).await,
                std::slice::from_ref(&a),
                "{table} as acme"
            );
            let mut all = column(store, RowScope::All, &sql).await;
            all.sort();
            let mut both = vec![a.clone(), g.clone()];
            both.sort();
            assert_eq!(all, both, "{table} across tenants");
            assert!(
                column(store, RowScope::Tenants(String::new()), &sql).await.is_empty(),
                "{table} with no tenant"
            );
        }
        // Joins through a parent see the same: another tenant's rows are not there.
        let sql = "SELECT a.id FROM agents a JOIN sites s ON s.id = a.site_id";
        assert_eq!(column(store, mine.clone(), sql).await, [acme.agent().to_string()]);
        // A viewer of several tenants sees exactly those.
        let both = RowScope::Tenants(format!("{a},{g}"));
        assert_eq!(column(store, both, "SELECT id FROM agents").await.len(), 2);
    }
}

#[tokio::test]
async fn writes_into_another_tenant_are_refused_or_touch_nothing() {
    let ca = CertificateAuthority::generate("test").expect("ca");
    let engines = engines().await;
    for store in postgres(&engines.stores) {
        let acme = enrolled(store, &ca, "acme", "hq").await.0;
        let globex = enrolled(store, &ca, "globex", "hq").await.0;
        let mine = RowScope::tenant(&acme.tenant_scope());
        let g = globex.tenant().to_string();
        // An insert naming another tenant fails the policy.
        let inserted: Result<_, sqlx::Error> = on_pool!(store, mine.clone(), pool, _Db => {
            sqlx::query("INSERT INTO sites (id, tenant_id, name, created_at_ms) VALUES ('x', $1, 'planted', 0)")
                .bind(&g)
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
        });
        let err = inserted.expect_err("insert into another tenant");
        assert!(err.to_string().contains("row-level security"), "{err}");
        // Updates and deletes without a filter reach only the own tenant.
        let renamed = on_pool!(store, mine.clone(), pool, _Db => {
            sqlx::query("UPDATE sites SET name = 'renamed'").execute(pool).await.expect("update").rows_affected()
        });
        assert_eq!(renamed, 1);
        let gone = on_pool!(store, mine.clone(), pool, _Db => {
            sqlx::query("DELETE FROM enrollment_tokens").execute(pool).await.expect("delete").rows_affected()
        });
        assert_eq!(gone, 1);
        let names = column(store, RowScope::All, "SELECT name FROM sites ORDER BY name").await;
        assert_eq!(names, ["hq", "renamed"], "globex's site untouched");
        let tokens = column(store, RowScope::All, "SELECT tenant_id FROM enrollment_tokens").await;
        assert_eq!(tokens, [g], "globex's token untouched");
        // The audit log is append-only for the application, whatever the scope.
        for sql in ["UPDATE audit_log SET action = 'x'", "DELETE FROM audit_log"] {
            let changed: Result<_, sqlx::Error> = on_pool!(store, RowScope::All, pool, _Db => sqlx::query(sql).execute(pool).await.map(|r| r.rows_affected()));
            let err = changed.expect_err(sql);
            assert!(err.to_string().contains("permission denied"), "{sql}: {err}");
        }
    }
}

#[tokio::test]
async fn every_tenant_table_forces_its_policy_on_a_role_that_cannot_bypass_it() {
    let engines = engines().await;
    for store in postgres(&engines.stores) {
        let tables = tenant_tables(store).await;
        assert!(tables.len() >= 25, "{tables:?}");
        for (table, via) in &tables {
            let flags = column(
                store,
                RowScope::All,
                &format!(
                    "SELECT relrowsecurity::text || ',' || relforcerowsecurity::text FROM pg_class \
                     WHERE oid = 'public.{table}'::regclass"
                ),
            )
            .await;
            assert_eq!(
                flags,
                ["true,true"],
                "{table} (by {via}) must enable and force row-level security"
            );
            let policies = column(
                store,
                RowScope::All,
                &format!(
                    "SELECT policyname::text FROM pg_policies WHERE schemaname = 'public' AND tablename = '{table}'"
                ),
            )
            .await;
            assert!(!policies.is_empty(), "{table} has no policy");
        }
        let who = column(
            store,
            RowScope::All,
            "SELECT current_user::text || ',' || rolsuper::text || ',' || rolbypassrls::text || ',' || \
             (SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tableowner = current_user)::text \
             FROM pg_roles WHERE rolname = current_user",
        )
        .await;
        assert_eq!(
            who,
            [format!("{},false,false,0", row_scope::APP_ROLE)],
            "role, superuser, bypass, tables owned"
        );
    }
}
