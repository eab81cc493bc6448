//! Store rows as API messages.
use outpost_proto::api_v1 as pb;
use outpost_store::agents::AgentRow;
use outpost_store::api_tokens::ApiTokenRow;
use outpost_store::devices::details::ConfigVersion;
use outpost_store::devices::views::DeviceRow;
use outpost_store::inventory::history::HostChange;
use outpost_store::inventory::views::HostRow;
use outpost_store::members::Role;
use outpost_store::metrics::SeriesPoints;
use outpost_store::tenants::SiteRow;

pub(crate) fn role(r: Role) -> i32 {
    match r {
        Role::Viewer => pb::Role::Viewer as i32,
        Role::Operator => pb::Role::Operator as i32,
        Role::Admin => pb::Role::Admin as i32,
    }
}

pub(crate) fn site(r: SiteRow) -> pb::Site {
    pb::Site {
        id: r.site.to_string(),
        name: r.site_name,
        tenant_id: r.tenant.to_string(),
        tenant_name: r.tenant_name,
    }
}

pub(crate) fn agent(r: AgentRow) -> pb::Agent {
    pb::Agent {
        id: r.agent.to_string(),
        tenant_id: r.tenant.to_string(),
        tenant_name: r.tenant_name,
        site_id: r.site.to_string(),
        site_name: r.site_name,
        hostname: r.hostname,
        os: r.os,
        version: r.version,
        online: r.online,
        last_seen_ms: r.last_seen_ms.unwrap_or(0),
        outbox_depth: r.outbox_depth,
        revoked: r.revoked,
        cert_not_after_ms: r.cert_not_after_ms,
    }
}

pub(crate) fn device(r: DeviceRow) -> pb::Device {
    pb::Device {
        id: r.id.to_string(),
        tenant_id: r.tenant.to_string(),
        tenant_name: r.tenant_name,
        site_id: r.site.to_string(),
        site_name: r.site_name,
        address: r.address,
        api_port: u32::try_from(r.api_port).unwrap_or(0),
        api_tls: r.api_tls,
        state: r.state.as_str().to_owned(),
        state_reason: r.state_reason,
        state_since_ms: r.state_since_ms,
        identity: r.identity,
        version: r.version,
        board_name: r.board_name,
        uptime_secs: r.uptime_secs,
        cpu_load: r.cpu_load,
        free_memory: r.free_memory,
        total_memory: r.total_memory,
        update_available: r.update_available,
        last_poll_ms: r.last_poll_ms,
        agent_id: r.agent_id.unwrap_or_default(),
    }
}

pub(crate) fn series(s: SeriesPoints) -> pb::Series {
    pb::Series {
        subject: s.subject,
        points: s
            .points
            .into_iter()
            .map(|p| pb::Point {
                at_ms: p.ts_ms,
                avg: p.avg,
                min: p.min,
                max: p.max,
            })
            .collect(),
    }
}

pub(crate) fn config_version(v: ConfigVersion) -> pb::ConfigVersion {
    pb::ConfigVersion {
        taken_at_ms: v.taken_at_ms,
        ros_version: v.ros_version,
        lines_added: v.lines_added,
        lines_removed: v.lines_removed,
        trigger: v.trigger,
    }
}

pub(crate) fn host(h: HostRow) -> pb::Host {
    pb::Host {
        id: h.id.to_string(),
        tenant_id: h.tenant.to_string(),
        site_id: h.site.to_string(),
        site_name: h.site_name,
        address: h.address,
        mac: h.mac,
        vendor: h.vendor,
        name: h.name,
        names: h.names,
        os_guess: h.os_guess,
        first_seen_ms: h.first_seen_ms,
        last_seen_ms: h.last_seen_ms,
        gone_at_ms: h.gone_at_ms,
        open_ports: h
            .open_ports
            .into_iter()
            .map(|p| pb::OpenPort {
                protocol: p.protocol,
                port: u32::from(p.port),
            })
            .collect(),
        device_id: h.device.map(|d| d.to_string()).unwrap_or_default(),
    }
}

pub(crate) fn host_change(c: HostChange) -> pb::HostChange {
    pb::HostChange {
        id: c.id,
        tenant_id: c.tenant.to_string(),
        site_id: c.site.to_string(),
        host_id: c.host.to_string(),
        host_address: c.host_address,
        host_name: c.host_name,
        at_ms: c.at_ms,
        kind: c.kind.as_str().to_owned(),
        detail: c.detail,
    }
}

pub(crate) fn api_token(t: ApiTokenRow) -> pb::ApiToken {
    pb::ApiToken {
        id: t.id,
        name: t.name,
        scope: t.scope.as_str().to_owned(),
        tenant_id: t.tenant.map(|t| t.to_string()).unwrap_or_default(),
        created_by: t.created_by_name,
        created_at_ms: t.created_at_ms,
        expires_at_ms: t.expires_at_ms,
        last_used_ms: t.last_used_ms,
        revoked: t.revoked_at_ms.is_some(),
    }
}
