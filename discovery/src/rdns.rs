//! Reverse DNS through the system resolver (so `/etc/hosts` and the site's
//! own DNS both count), on blocking threads, bounded in time and number.
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;

/// Lookups in flight at most.
const CONCURRENCY: usize = 16;

/// The name of each address that has one, within `timeout` per lookup.
pub async fn names(addrs: &[IpAddr], timeout: Duration) -> Vec<(IpAddr, String)> {
    let permits = Arc::new(Semaphore::new(CONCURRENCY));
    let tasks: Vec<_> = addrs
        .iter()
        .map(|&addr| {
            let permits = permits.clone();
            tokio::spawn(async move {
                let _permit = permits.acquire_owned().await.ok()?;
                let lookup = tokio::task::spawn_blocking(move || dns_lookup::lookup_addr(&addr));
                match tokio::time::timeout(timeout, lookup).await {
                    Ok(Ok(Ok(name))) if !name.is_empty() && name.parse::<IpAddr>().is_err() => Some((addr, name)),
                    _ => None,
                }
            })
        })
        .collect();
    let mut out = Vec::new();
    for t in tasks {
        if let Ok(Some(found)) = t.await {
            out.push(found);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn loopback_has_a_name_and_numbers_are_not_names() {
        let found = names(&["127.0.0.1".parse().unwrap()], Duration::from_secs(5)).await;
        // /etc/hosts names 127.0.0.1 on every Debian system.
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].1.parse::<IpAddr>().is_err());
    }
}
