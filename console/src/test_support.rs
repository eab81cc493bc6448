//! Helpers shared by the console's unit tests.
use std::time::Duration;

/// Waits (in real time: the work runs on other tasks or threads) until `f`
/// holds, for at most 10 s.
pub(crate) async fn until(what: &str, f: impl Fn() -> bool) {
    tokio::time::timeout(Duration::from_secs(10), async {
        while !f() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("timed out waiting until {what}"));
}
