//! A tower layer in front of the gRPC service, seeing every call before its
//! message is decoded:
//!
//! * `Enroll` is rate-limited per source ([`super::rate_limit`]); a call over
//!   the limit is answered `RESOURCE_EXHAUSTED` with the time to wait, before
//!   the request body is read or the database is touched;
//! * on connections without a client certificate, calls are reported to the
//!   connection's [`Activity`], which closes it once it has enrolled, idled
//!   or lived long enough ([`super::anonymous`]).
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use futures::future::BoxFuture;
use outpost_proto::agent_v1::agent_service_server::SERVICE_NAME;
use tonic::Status;
use tonic::body::Body;
use tower::{Layer, Service};

use super::flood_log::{Event, FloodLog};
use super::listener::PeerInfo;
use super::rate_limit::RateLimiter;
use super::source::Source;

/// Builds [`Gate`]s sharing one rate limiter and log.
#[derive(Clone, Debug)]
pub(crate) struct GateLayer {
    enroll_limit: Arc<RateLimiter>,
    flood: Arc<FloodLog>,
}

impl GateLayer {
    pub(crate) fn new(enroll_limit: Arc<RateLimiter>, flood: Arc<FloodLog>) -> Self {
        Self { enroll_limit, flood }
    }
}

impl<S> Layer<S> for GateLayer {
    type Service = Gate<S>;
    fn layer(&self, inner: S) -> Gate<S> {
        Gate {
            inner,
            layer: self.clone(),
        }
    }
}

/// See the module docs.
#[derive(Clone, Debug)]
pub(crate) struct Gate<S> {
    inner: S,
    layer: GateLayer,
}

/// Whether `path` is `/outpost.agent.v1.AgentService/Enroll`.
fn is_enroll(path: &str) -> bool {
    path.strip_prefix('/')
        .and_then(|p| p.strip_prefix(SERVICE_NAME))
        .is_some_and(|m| m == "/Enroll")
}

impl<S> Service<http::Request<Body>> for Gate<S>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let enroll = is_enroll(request.uri().path());
        let peer = request.extensions().get::<PeerInfo>();
        // Every call on an anonymous connection counts, refused ones too: a
        // refused Enroll still means this connection has had its chance.
        let call = peer.and_then(|p| p.activity.as_ref()).map(|a| a.call(enroll));
        if enroll && let Some(peer) = peer {
            let remote = peer.remote;
            if let Err(wait) = self.layer.enroll_limit.check(Instant::now(), Source::of(remote.ip())) {
                self.layer.flood.record(remote, Event::EnrollRateLimited, None);
                let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
                let status = Status::resource_exhausted(format!(
                    "too many enrollment attempts from this address; retry in {secs} s"
                ));
                drop(call);
                return Box::pin(std::future::ready(Ok(status.into_http())));
            }
        }
        let response = self.inner.call(request);
        Box::pin(async move {
            let response = response.await;
            // The call is over once its response (for Enroll, the whole
            // answer) is handed to HTTP/2.
            drop(call);
            response
        })
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::super::anonymous::{Activity, LIFETIMES};
    use super::super::connections::ConnHandle;
    use super::super::rate_limit::Rate;
    use super::*;

    #[tokio::test]
    async fn enroll_over_the_limit_is_refused_before_the_service() {
        let served = Arc::new(AtomicUsize::new(0));
        let inner = {
            let served = served.clone();
            tower::service_fn(move |_: http::Request<Body>| {
                served.fetch_add(1, Ordering::SeqCst);
                std::future::ready(Ok::<_, Infallible>(http::Response::new(Body::default())))
            })
        };
        let rate = Rate {
            burst: 2,
            every: Duration::from_secs(60),
        };
        let mut gate = GateLayer::new(Arc::new(RateLimiter::new(rate)), Arc::default()).layer(inner);
        let remote = "192.0.2.1:4000".parse().expect("addr");
        let conn = ConnHandle::default();
        let peer = PeerInfo {
            remote,
            agent: None,
            conn: conn.clone(),
            activity: Some(Activity::watch(conn, remote, LIFETIMES)),
        };
        let request = |path: &str| {
            let mut r = http::Request::new(Body::default());
            *r.uri_mut() = path.parse().expect("uri");
            r.extensions_mut().insert(peer.clone());
            r
        };
        let enroll = format!("/{SERVICE_NAME}/Enroll");
        for _ in 0..2 {
            let response = gate.call(request(&enroll)).await.expect("infallible");
            assert!(Status::from_header_map(response.headers()).is_none());
        }
        let response = gate.call(request(&enroll)).await.expect("infallible");
        let status = Status::from_header_map(response.headers()).expect("a status");
        assert_eq!(status.code(), tonic::Code::ResourceExhausted);
        assert!(status.message().contains("retry in 60 s"), "{status:?}");
        // Other calls are not limited.
        gate.call(request(&format!("/{SERVICE_NAME}/Renew")))
            .await
            .expect("infallible");
        assert_eq!(served.load(Ordering::SeqCst), 3);
    }

    #[test]
    fn recognises_enroll_only() {
        assert!(is_enroll("/outpost.agent.v1.AgentService/Enroll"));
        assert!(!is_enroll("/outpost.agent.v1.AgentService/Renew"));
        assert!(!is_enroll("/outpost.agent.v1.AgentService/EnrollX"));
        assert!(!is_enroll("/other.Service/Enroll"));
        assert!(!is_enroll("outpost.agent.v1.AgentService/Enroll"));
    }
}
