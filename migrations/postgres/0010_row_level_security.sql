-- Row-level security: the database's own wall between tenants.
--
-- The collector's connections act as outpost_app (SET ROLE after connecting):
-- not the owner of these tables, no superuser, no BYPASSRLS, so the policies
-- below bind every statement it runs. Each statement sees only the rows of
-- the tenants named in the setting outpost.tenants (ids joined by commas), or
-- every row when outpost.all_tenants is 'on'; the store sets both before each
-- statement or transaction (store/src/row_scope.rs). Unset, nothing is seen.
--
-- The role is shared by every database of the cluster. Creating it needs
-- CREATEROLE; where the database user lacks it, an administrator runs once:
--   CREATE ROLE outpost_app NOLOGIN NOSUPERUSER NOBYPASSRLS NOINHERIT;
--   GRANT outpost_app TO <the collector's database user>;
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'outpost_app') THEN
        BEGIN
            CREATE ROLE outpost_app NOLOGIN NOSUPERUSER NOBYPASSRLS NOINHERIT;
        EXCEPTION
            -- Another database of the cluster created it at the same moment.
            WHEN duplicate_object OR unique_violation THEN NULL;
            WHEN insufficient_privilege THEN
                RAISE EXCEPTION 'the role outpost_app does not exist and % may not create it', current_user
                    USING HINT = 'as a PostgreSQL administrator, run: CREATE ROLE outpost_app NOLOGIN NOSUPERUSER '
                        'NOBYPASSRLS NOINHERIT; GRANT outpost_app TO ' || current_user || ';';
        END;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'outpost_app' AND (rolsuper OR rolbypassrls)) THEN
        RAISE EXCEPTION 'the role outpost_app must not be a superuser nor bypass row-level security';
    END IF;
    IF NOT pg_has_role(current_user, 'outpost_app', 'MEMBER') THEN
        EXECUTE format('GRANT outpost_app TO %I', current_user);
    END IF;
END
$$;

GRANT USAGE ON SCHEMA public TO outpost_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO outpost_app;
GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO outpost_app;
-- Tables of later migrations, created by this same user.
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO outpost_app;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO outpost_app;
-- The migrations' own bookkeeping is not the application's business.
REVOKE ALL ON _sqlx_migrations FROM outpost_app;
-- The audit log is append-only for the application.
REVOKE UPDATE, DELETE ON audit_log FROM outpost_app;

-- Whether a row of `tenant` is visible to the current statement. A plain SQL
-- function, so the planner inlines it into each policy.
CREATE FUNCTION outpost_tenant_visible(tenant TEXT) RETURNS BOOLEAN
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT current_setting('outpost.all_tenants', true) = 'on'
        OR tenant = ANY (string_to_array(current_setting('outpost.tenants', true), ','))
$$;
GRANT EXECUTE ON FUNCTION outpost_tenant_visible(TEXT) TO outpost_app;

-- Tables with a tenant column.
DO $$
DECLARE
    t TEXT;
BEGIN
    FOREACH t IN ARRAY ARRAY[
        'sites', 'enrollment_tokens', 'agents', 'metric_samples', 'host_facts',
        'devices', 'device_events', 'config_versions', 'metric_series',
        'hosts', 'host_addresses', 'host_changes', 'discovery_scans', 'discovery_jobs',
        'site_credentials', 'memberships', 'api_tokens'
    ] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY tenant_rows ON %I USING (outpost_tenant_visible(tenant_id))', t);
    END LOOP;
END
$$;

ALTER TABLE tenants ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenants FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_rows ON tenants USING (outpost_tenant_visible(id));

-- Rows that belong to a tenant through their parent: visible when the parent
-- is (the subquery is itself under the parent's policy).
DO $$
DECLARE
    t TEXT;
BEGIN
    FOREACH t IN ARRAY ARRAY[
        'device_interfaces', 'device_health', 'device_addresses', 'device_neighbors',
        'device_wireless_clients', 'device_dhcp_leases', 'device_log',
        'metric_dirty_5m', 'metric_dirty_1h'
    ] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format(
            'CREATE POLICY tenant_rows ON %I USING (current_setting(''outpost.all_tenants'', true) = ''on'' '
            'OR EXISTS (SELECT 1 FROM devices d WHERE d.id = device_id))', t);
    END LOOP;
    FOREACH t IN ARRAY ARRAY['metric_raw', 'metric_5m', 'metric_1h'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format(
            'CREATE POLICY tenant_rows ON %I USING (current_setting(''outpost.all_tenants'', true) = ''on'' '
            'OR EXISTS (SELECT 1 FROM metric_series s WHERE s.id = series_id))', t);
    END LOOP;
END
$$;

ALTER TABLE host_ports ENABLE ROW LEVEL SECURITY;
ALTER TABLE host_ports FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_rows ON host_ports USING (
    current_setting('outpost.all_tenants', true) = 'on' OR EXISTS (SELECT 1 FROM hosts h WHERE h.id = host_id)
);

-- The audit log: a tenant's records, and global ones (sign-ins, tenants
-- created) only across tenants; any scope may append a record of its own
-- tenants or a global one. There is no UPDATE or DELETE policy: none passes.
ALTER TABLE audit_log ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_log FORCE ROW LEVEL SECURITY;
CREATE POLICY audit_read ON audit_log FOR SELECT USING (outpost_tenant_visible(tenant_id));
CREATE POLICY audit_append ON audit_log FOR INSERT
    WITH CHECK (tenant_id IS NULL OR outpost_tenant_visible(tenant_id));
