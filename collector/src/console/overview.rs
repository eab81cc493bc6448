//! "Sites & agents" as a page, as JSON and as a Server-Sent Events stream of
//! that JSON.
use std::convert::Infallible;
use std::time::Duration;

use askama::Template;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::Stream;
use tokio::time::{Interval, MissedTickBehavior};

use crate::store::Store;

use super::error::{ApiError, PageError};
use super::layout::{Layout, render};
use super::overview_data::{Overview, load};
use super::session::{ApiSession, Authenticated, PageSession};
use super::state::ConsoleState;

/// How often the event stream sends a fresh overview.
const REFRESH: Duration = Duration::from_secs(2);

#[derive(Template)]
#[template(path = "overview.html")]
pub(crate) struct OverviewPage {
    pub(crate) layout: Layout,
    pub(crate) overview: Overview,
}

/// `GET /`.
pub(crate) async fn page(
    State(state): State<ConsoleState>,
    PageSession(auth): PageSession,
) -> Result<Response, PageError> {
    let overview = load(&state.store, &auth.session.viewer).await?;
    Ok(render(
        StatusCode::OK,
        &OverviewPage {
            layout: Layout::signed_in(&auth.session),
            overview,
        },
    ))
}

/// `GET /api/overview`.
pub(crate) async fn api(
    State(state): State<ConsoleState>,
    ApiSession(auth): ApiSession,
) -> Result<Json<Overview>, ApiError> {
    Ok(Json(load(&state.store, &auth.session.viewer).await?))
}

/// `GET /events`: an `overview` event now and every [`REFRESH`]. The session is
/// checked again before each one, so signing out (or expiry) ends the stream
/// with a `signed-out` event instead of leaking further updates.
pub(crate) async fn events(State(state): State<ConsoleState>, ApiSession(auth): ApiSession) -> Response {
    let mut tick = tokio::time::interval(REFRESH);
    // A slow database should delay updates, not trigger a burst of catch-up ticks.
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let sse = Sse::new(overview_stream(state.store, auth, tick)).keep_alive(KeepAlive::default());
    // Reverse proxies such as nginx would otherwise buffer the stream.
    (
        [(
            HeaderName::from_static("x-accel-buffering"),
            HeaderValue::from_static("no"),
        )],
        sse,
    )
        .into_response()
}

fn overview_stream(
    store: Store,
    auth: Authenticated,
    tick: Interval,
) -> impl Stream<Item = Result<Event, Infallible>> + Send + 'static {
    futures::stream::unfold(Some((store, auth, tick)), |state| async move {
        let (store, auth, mut tick) = state?;
        tick.tick().await;
        let event = match store.session(&auth.token).await {
            Ok(Some(session)) => match load(&store, &session.viewer).await {
                Ok(overview) => Event::default()
                    .event("overview")
                    .json_data(&overview)
                    .unwrap_or_else(|e| {
                        tracing::error!(error = %e, "console: encoding the overview failed");
                        problem_event()
                    }),
                Err(e) => {
                    tracing::error!(error = %e, "console: database query failed");
                    problem_event()
                }
            },
            Ok(None) => return Some((Ok(Event::default().event("signed-out").data("{}")), None)),
            Err(e) => {
                tracing::error!(error = %e, "console: database query failed");
                problem_event()
            }
        };
        Some((Ok(event), Some((store, auth, tick))))
    })
}

/// Tells the page its data is stale without saying why (the log says why).
fn problem_event() -> Event {
    Event::default()
        .event("problem")
        .data(r#"{"error":"internal server error"}"#)
}
