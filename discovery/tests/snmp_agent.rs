//! The SNMP client against Debian's real `snmpd`, on hosts of a test
//! network, queried from the scan side: what succeeds, and how each kind
//! of failure is named.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use outpost_discovery::snmp::{AuthProtocol, Credentials, OperStatus, PrivProtocol, SnmpError, SnmpInfo, query_host};
use outpost_testnet::{
    HostSpec, SNMP_COMMUNITY, SNMP_SYS_LOCATION, SNMP_V3_USER, SNMP_V3_USERS, TestNet, snmp_sys_name,
};

/// net-snmp's sysObjectID for Linux.
const NET_SNMP_LINUX: &str = "1.3.6.1.4.1.8072.3.2.10";

fn query(
    net: &TestNet,
    addr: IpAddr,
    creds: &Credentials,
    timeout: Duration,
) -> (Result<SnmpInfo, SnmpError>, Duration) {
    net.block_on_in_scan(async {
        let started = Instant::now();
        let result = query_host(addr, 161, creds, timeout).await;
        (result, started.elapsed())
    })
    .expect("entering the scan namespace")
}

fn v3(user: &str, auth_password: &str, priv_password: &str) -> Credentials {
    Credentials::v3_auth_priv(
        user,
        AuthProtocol::Sha1,
        auth_password,
        PrivProtocol::Aes128,
        priv_password,
    )
}

fn main_user() -> Credentials {
    v3(
        SNMP_V3_USER.name,
        SNMP_V3_USER.auth_password,
        SNMP_V3_USER.priv_password,
    )
}

fn snmpd_net() -> Option<TestNet> {
    TestNet::builder().host(HostSpec::snmpd()).build_or_skip()
}

fn assert_describes_host(info: &SnmpInfo, net: &TestNet) {
    let host = net.host(0);
    assert_eq!(info.sys_name.as_deref(), Some(snmp_sys_name(0).as_str()));
    assert_eq!(info.sys_location.as_deref(), Some(SNMP_SYS_LOCATION));
    assert_eq!(info.sys_object_id.as_deref(), Some(NET_SNMP_LINUX));
    assert!(
        info.sys_descr.as_deref().is_some_and(|d| d.starts_with("Linux")),
        "{:?}",
        info.sys_descr
    );
    assert!(info.sys_uptime_ticks.is_some());
    assert!(!info.is_mikrotik());
    let lo = info
        .interfaces
        .iter()
        .find(|i| i.name.as_deref() == Some("lo"))
        .expect("lo in ifTable");
    assert_eq!(
        (lo.if_type, lo.mac, lo.oper_status),
        (Some(24), None, Some(OperStatus::Up))
    );
    let eth = info
        .interfaces
        .iter()
        .find(|i| i.name.as_deref() == Some("eth0"))
        .expect("eth0 in ifTable");
    assert_eq!(eth.descr.as_deref(), Some("eth0"));
    assert_eq!(eth.if_type, Some(6));
    assert_eq!(eth.mac, Some(host.mac().0));
    assert_eq!(eth.oper_status, Some(OperStatus::Up));
    assert!(eth.high_speed_mbps.is_some());
    // net-snmp has no LLDP-MIB: the walk ends at once, without an error.
    assert!(info.lldp_neighbours.is_empty());
    assert!(info.incomplete.is_empty(), "{:?}", info.incomplete);
}

#[test]
fn v2c_reads_the_system_group_and_interfaces() {
    let Some(net) = snmpd_net() else { return };
    let (result, _) = query(
        &net,
        net.host(0).addr(),
        &Credentials::v2c(SNMP_COMMUNITY),
        Duration::from_secs(2),
    );
    assert_describes_host(&result.expect("v2c query"), &net);
}

#[test]
fn v3_auth_priv_reads_the_same() {
    let Some(net) = snmpd_net() else { return };
    let (result, _) = query(&net, net.host(0).addr(), &main_user(), Duration::from_secs(2));
    assert_describes_host(&result.expect("SNMPv3 authPriv query"), &net);
}

#[test]
fn every_protocol_pair_net_snmp_offers() {
    let Some(net) = snmpd_net() else { return };
    for user in SNMP_V3_USERS {
        let auth: AuthProtocol = user.auth_protocol.parse().expect("auth protocol name");
        let privacy: PrivProtocol = user.priv_protocol.parse().expect("privacy protocol name");
        let creds = Credentials::v3_auth_priv(user.name, auth, user.auth_password, privacy, user.priv_password);
        let (result, _) = query(&net, net.host(0).addr(), &creds, Duration::from_secs(2));
        let info = result.unwrap_or_else(|e| panic!("user {} ({auth:?}/{privacy:?}): {e}", user.name));
        assert_eq!(
            info.sys_name.as_deref(),
            Some(snmp_sys_name(0).as_str()),
            "user {}",
            user.name
        );
    }
}

#[test]
fn over_ipv6() {
    let Some(net) = TestNet::builder().host(HostSpec::snmpd().ipv6()).build_or_skip() else {
        return;
    };
    let addr = IpAddr::V6(net.host(0).ipv6().expect("an IPv6 host"));
    let (result, _) = query(&net, addr, &main_user(), Duration::from_secs(2));
    assert_eq!(
        result.expect("query over IPv6").sys_name.as_deref(),
        Some(snmp_sys_name(0).as_str())
    );
}

/// Took about `timeout`: not much less (it waited), not much more (no hang).
fn assert_took_the_timeout(elapsed: Duration, timeout: Duration) {
    assert!(
        elapsed >= timeout.mul_f32(0.9) && elapsed < timeout + Duration::from_millis(500),
        "took {elapsed:?} with a timeout of {timeout:?}"
    );
}

#[test]
fn wrong_community_is_a_timeout_that_says_so() {
    let Some(net) = snmpd_net() else { return };
    let timeout = Duration::from_millis(900);
    let (result, elapsed) = query(
        &net,
        net.host(0).addr(),
        &Credentials::v2c("not-the-community"),
        timeout,
    );
    let error = result.expect_err("a wrong community cannot succeed");
    assert!(matches!(error, SnmpError::Timeout { attempts: 3, .. }), "{error:?}");
    assert!(
        error.to_string().contains("host down, SNMP off, or wrong community"),
        "{error}"
    );
    assert_took_the_timeout(elapsed, timeout);
}

#[test]
fn unknown_v3_user_is_named() {
    let Some(net) = snmpd_net() else { return };
    let (result, elapsed) = query(
        &net,
        net.host(0).addr(),
        &v3("nobody", "authpass1", "privpass1"),
        Duration::from_secs(2),
    );
    let error = result.expect_err("an unknown user cannot succeed");
    assert!(
        matches!(&error, SnmpError::UnknownUser { user, .. } if user == "nobody"),
        "{error:?}"
    );
    assert!(error.to_string().contains("usmStatsUnknownUserNames"), "{error}");
    assert!(
        elapsed < Duration::from_secs(1),
        "took {elapsed:?}: the agent answers, nothing should wait"
    );
}

#[test]
fn wrong_auth_password_is_named() {
    let Some(net) = snmpd_net() else { return };
    let creds = v3(SNMP_V3_USER.name, "wrong-authpass", SNMP_V3_USER.priv_password);
    let (result, elapsed) = query(&net, net.host(0).addr(), &creds, Duration::from_secs(2));
    let error = result.expect_err("a wrong password cannot succeed");
    assert!(
        matches!(&error, SnmpError::AuthenticationFailed { user, .. } if user == SNMP_V3_USER.name),
        "{error:?}"
    );
    assert!(elapsed < Duration::from_secs(1), "took {elapsed:?}");
}

#[test]
fn wrong_auth_protocol_is_an_authentication_failure_too() {
    let Some(net) = snmpd_net() else { return };
    let creds = Credentials::v3_auth_priv(
        SNMP_V3_USER.name,
        AuthProtocol::Md5,
        SNMP_V3_USER.auth_password,
        PrivProtocol::Aes128,
        SNMP_V3_USER.priv_password,
    );
    let (result, _) = query(&net, net.host(0).addr(), &creds, Duration::from_secs(2));
    assert!(
        matches!(result, Err(SnmpError::AuthenticationFailed { .. })),
        "{result:?}"
    );
}

/// net-snmp drops a request it cannot decrypt without a report, so a wrong
/// privacy password shows as silence after a successful engine discovery.
#[test]
fn wrong_privacy_password_is_a_timeout_that_says_so() {
    let Some(net) = snmpd_net() else { return };
    let timeout = Duration::from_millis(900);
    let creds = v3(SNMP_V3_USER.name, SNMP_V3_USER.auth_password, "wrong-privpass");
    let (result, elapsed) = query(&net, net.host(0).addr(), &creds, timeout);
    let error = result.expect_err("a wrong privacy password cannot succeed");
    assert!(matches!(error, SnmpError::Timeout { .. }), "{error:?}");
    assert!(error.to_string().contains("wrong privacy password"), "{error}");
    assert_took_the_timeout(elapsed, timeout);
}

#[test]
fn a_lower_security_level_than_the_user_needs_is_access_denied() {
    let Some(net) = snmpd_net() else { return };
    let creds = Credentials::v3_auth_no_priv(SNMP_V3_USER.name, AuthProtocol::Sha1, SNMP_V3_USER.auth_password);
    let (result, _) = query(&net, net.host(0).addr(), &creds, Duration::from_secs(2));
    // snmpd's "rouser outpost priv": authorizationError (16).
    assert!(
        matches!(result, Err(SnmpError::AccessDenied { status: 16, .. })),
        "{result:?}"
    );
}

#[test]
fn a_silent_host_is_a_timeout() {
    let Some(net) = TestNet::builder().host(HostSpec::silent()).build_or_skip() else {
        return;
    };
    let timeout = Duration::from_millis(900);
    for creds in [Credentials::v2c(SNMP_COMMUNITY), main_user()] {
        let (result, elapsed) = query(&net, net.host(0).addr(), &creds, timeout);
        let error = result.expect_err("nothing answers");
        assert!(matches!(error, SnmpError::Timeout { .. }), "{error:?}");
        assert!(error.to_string().contains("host down"), "{error}");
        assert_took_the_timeout(elapsed, timeout);
    }
}

/// A live host without an agent answers with ICMP port unreachable, which
/// needs no waiting.
#[test]
fn a_host_without_an_agent_is_unreachable_at_once() {
    let Some(net) = TestNet::builder().host(HostSpec::icmp_only()).build_or_skip() else {
        return;
    };
    let (result, elapsed) = query(
        &net,
        net.host(0).addr(),
        &Credentials::v2c(SNMP_COMMUNITY),
        Duration::from_secs(2),
    );
    assert!(matches!(result, Err(SnmpError::Unreachable { .. })), "{result:?}");
    assert!(elapsed < Duration::from_secs(1), "took {elapsed:?}");
}

#[test]
fn invalid_credentials_fail_before_sending() {
    let creds = v3("ops", "short", "privpass1");
    let result = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(query_host(
            "192.0.2.1".parse().expect("address"),
            161,
            &creds,
            Duration::from_secs(1),
        ));
    assert!(matches!(result, Err(SnmpError::Credentials(_))), "{result:?}");
}

#[test]
fn the_query_future_can_be_spawned() {
    fn assert_send<T: Send>(_: &T) {}
    let creds = Credentials::v2c(SNMP_COMMUNITY);
    let future = query_host(
        "192.0.2.1".parse().expect("address"),
        161,
        &creds,
        Duration::from_secs(1),
    );
    assert_send(&future);
}
