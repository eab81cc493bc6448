//! A deadline on receiving a request body, as a layer for one router.
//!
//! A request counts as in progress from its complete head (see
//! [`super::connection`]), so a client trickling the body of a form post
//! would otherwise hold its connection until the connection's maximum
//! lifetime. With this layer the body must have arrived within the deadline
//! from the head; after it, reading the body fails and the handler's body
//! extractor answers with an error. It is a layer on a router rather than on
//! the port because what is reasonable depends on the service: a form is a
//! few hundred bytes, a streaming gRPC call's body lasts as long as the call.
use std::future::Future as _;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use http::Request;
use tokio::time::Sleep;
use tower::util::MapRequestLayer;

/// The error a body read gets once the deadline has passed.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within {0:?}")]
pub struct TooSlow(Duration);

/// A layer giving every request body `deadline` from the request's arrival.
pub fn layer(deadline: Duration) -> MapRequestLayer<impl Fn(Request<Body>) -> Request<Body> + Clone> {
    MapRequestLayer::new(move |req: Request<Body>| {
        req.map(|body| {
            Body::new(Deadline {
                body,
                deadline,
                timer: Box::pin(tokio::time::sleep(deadline)),
            })
        })
    })
}

struct Deadline {
    body: Body,
    deadline: Duration,
    timer: Pin<Box<Sleep>>,
}

impl http_body::Body for Deadline {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.body).poll_frame(cx) {
            return Poll::Ready(frame);
        }
        match self.timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(axum::Error::new(TooSlow(self.deadline))))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}
