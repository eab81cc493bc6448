//! One port, two services: gRPC calls (`content-type: application/grpc…`)
//! go to the public API, everything else to the console. Each keeps its own
//! fallback, limits and layers (the console's security headers and body
//! limits never touch a gRPC response, and an unknown web path is the
//! console's 404 page, not a gRPC status).
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, header};
use axum::response::Response;
use tower::{Service, ServiceExt as _};

/// Routes a request to `api` or `web` by its content type.
#[derive(Clone, Debug)]
pub struct ByContentType {
    api: Router,
    web: Router,
}

impl ByContentType {
    /// The two services.
    pub fn new(api: Router, web: Router) -> Self {
        Self { api, web }
    }

    /// As one router, for [`super::serve`].
    pub fn into_router(self) -> Router {
        Router::new().fallback_service(self)
    }
}

/// Whether a request is a gRPC call (`application/grpc`, `application/grpc+proto`, …).
pub(crate) fn is_grpc<B>(req: &Request<B>) -> bool {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v == "application/grpc" || v.starts_with("application/grpc+") || v.starts_with("application/grpc;")
        })
}

impl Service<Request<Body>> for ByContentType {
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // Both routers are always ready (axum routers clone per request).
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        let target = if is_grpc(&req) {
            self.api.clone()
        } else {
            self.web.clone()
        };
        Box::pin(target.oneshot(req))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(content_type: Option<&str>) -> Request<()> {
        let mut b = Request::builder().uri("/outpost.api.v1.AgentService/ListAgents");
        if let Some(ct) = content_type {
            b = b.header(header::CONTENT_TYPE, ct);
        }
        b.body(()).expect("request")
    }

    #[test]
    fn grpc_content_types_go_to_the_api_and_the_rest_to_the_console() {
        for ct in [
            "application/grpc",
            "application/grpc+proto",
            "application/grpc; charset=x",
        ] {
            assert!(is_grpc(&req(Some(ct))), "{ct}");
        }
        for ct in [
            None,
            Some("text/html"),
            Some("application/grpc-web"),
            Some("application/grpcx"),
        ] {
            assert!(!is_grpc(&req(ct)), "{ct:?}");
        }
    }
}
