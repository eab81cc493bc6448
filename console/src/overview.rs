//! "Sites & agents" as a page, as JSON and as a Server-Sent Events stream of
//! that JSON.
use std::convert::Infallible;

use askama::Template;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::Stream;
use tokio::sync::watch;
use tokio::time::Instant;

use outpost_store::scope::Viewer;
use outpost_store::users::SessionKey;

use super::error::{ApiError, PageError};
use super::feed::Update;
use super::layout::{Layout, render};
use super::overview_data::{Overview, load};
use super::session::{ApiSession, PageSession};
use super::state::ConsoleState;

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

/// `GET /events`: an `overview` event now and after every read of the shared
/// [`Feed`](super::feed::Feed), cut down to what this session may see. The
/// feed also reads which sessions are live, so signing out (or expiry) ends
/// the stream with a `signed-out` event instead of leaking further updates,
/// without a query per stream.
pub(crate) async fn events(State(state): State<ConsoleState>, ApiSession(auth): ApiSession) -> Response {
    // The extractor has just found the session live; taken before subscribing,
    // so any snapshot that says otherwise was read afterwards.
    let checked_at = Instant::now();
    let stream = overview_stream(
        SessionKey::of(&auth.token),
        auth.session.viewer,
        checked_at,
        state.feed.subscribe(),
    );
    let sse = Sse::new(stream).keep_alive(KeepAlive::default());
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

/// One stream's events: per feed update, the overview as the session may
/// see it then (its user's tenants as of that snapshot, starting from
/// `viewer`), a `problem` when the read failed, or `signed-out` (and the end)
/// once a snapshot read after `checked_at` no longer lists the session.
fn overview_stream(
    session: SessionKey,
    viewer: Viewer,
    checked_at: Instant,
    updates: watch::Receiver<Update>,
) -> impl Stream<Item = Result<Event, Infallible>> + Send + 'static {
    futures::stream::unfold(Some((updates, viewer)), move |state| {
        let session = session.clone();
        async move {
            let (mut updates, mut viewer) = state?;
            loop {
                // Fails only once the feed is gone, which it is not while this
                // receiver exists; ending lets the browser reconnect anyway.
                updates.changed().await.ok()?;
                let update = updates.borrow_and_update().clone();
                let event = match update {
                    Update::Pending => continue,
                    Update::Failed => problem_event(),
                    Update::Ready(snapshot) => {
                        if snapshot.taken_at >= checked_at {
                            match snapshot.live_sessions.get(&session) {
                                None => return Some((Ok(Event::default().event("signed-out").data("{}")), None)),
                                // A role removed or a tenant added shows in the next event.
                                Some(now) => viewer = now.clone(),
                            }
                        }
                        match snapshot.overview_json(&viewer) {
                            Ok(json) => Event::default().event("overview").data(&*json),
                            Err(error) => {
                                tracing::error!(%error, "console: encoding the overview failed");
                                problem_event()
                            }
                        }
                    }
                };
                return Some((Ok(event), Some((updates, viewer))));
            }
        }
    })
}

/// Tells the page its data is stale without saying why (the log says why).
fn problem_event() -> Event {
    Event::default()
        .event("problem")
        .data(r#"{"error":"internal server error"}"#)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Arc;
    use std::time::Duration;

    use axum::body::BodyDataStream;
    use futures::StreamExt;
    use outpost_certs::{AgentCertificate, AgentIdentity, SiteId, TenantId};
    use outpost_store::AgentScope;
    use outpost_store::agents::AgentRow;
    use outpost_store::tenants::SiteRow;

    use super::*;
    use crate::feed::Snapshot;

    fn rows(tenant: TenantId, host: &str) -> (SiteRow, AgentRow) {
        let site = SiteRow {
            tenant,
            tenant_name: format!("{host}'s tenant"),
            site: SiteId::random(),
            site_name: "hq".into(),
        };
        let agent = AgentRow::sample(&site, host);
        (site, agent)
    }

    /// The next event, as its text, or `None` once the stream ends.
    async fn next_event(body: &mut BodyDataStream) -> Option<String> {
        let chunk = tokio::time::timeout(Duration::from_secs(5), body.next())
            .await
            .expect("an event or the end")?;
        Some(String::from_utf8(chunk.unwrap().to_vec()).unwrap())
    }

    #[tokio::test]
    async fn a_stream_shows_only_its_tenant_and_ends_with_its_session() {
        let (acme, zeta) = (TenantId::random(), TenantId::random());
        let (acme_site, acme_agent) = rows(acme, "acme-pc");
        let (zeta_site, zeta_agent) = rows(zeta, "zeta-pc");
        let member_of = |site: &SiteRow, agent: &AgentRow| {
            Viewer::Tenant(
                AgentScope::from_certificate(&AgentCertificate {
                    identity: AgentIdentity {
                        tenant: site.tenant,
                        site: site.site,
                        agent: agent.agent,
                    },
                    serial: String::new(),
                    not_before: 0,
                    not_after: 0,
                })
                .tenant_scope(),
            )
        };
        let viewer = member_of(&acme_site, &acme_agent);
        let session = SessionKey::of("acme user's cookie");
        let checked_at = Instant::now();
        let snapshot = |taken_at: Instant, live: &[(SessionKey, Viewer)]| {
            Update::Ready(Arc::new(Snapshot::new(
                taken_at,
                1,
                vec![acme_site.clone(), zeta_site.clone()],
                vec![acme_agent.clone(), zeta_agent.clone()],
                live.iter().cloned().collect::<HashMap<_, _>>(),
            )))
        };

        let (feed, updates) = watch::channel(Update::Pending);
        let stream = overview_stream(session.clone(), viewer.clone(), checked_at, updates);
        let mut body = Sse::new(stream).into_response().into_body().into_data_stream();

        // Read before the session was checked: its absence proves nothing yet.
        let before = checked_at.checked_sub(Duration::from_secs(1)).unwrap();
        feed.send_replace(snapshot(before, &[]));
        let event = next_event(&mut body).await.unwrap();
        assert!(event.starts_with("event: overview\n"), "{event}");
        assert!(event.contains("acme-pc"), "{event}");
        assert!(
            !event.contains("zeta-pc") && !event.contains(&zeta.to_string()),
            "{event}"
        );

        feed.send_replace(Update::Failed);
        let event = next_event(&mut body).await.unwrap();
        assert!(event.starts_with("event: problem\n"), "{event}");

        feed.send_replace(snapshot(Instant::now(), &[(session.clone(), viewer.clone())]));
        let event = next_event(&mut body).await.unwrap();
        assert!(
            event.starts_with("event: overview\n") && !event.contains("zeta-pc"),
            "{event}"
        );

        // The user's membership moved from acme to zeta while the stream is
        // open: the next event shows zeta's agents and no longer acme's.
        let moved = member_of(&zeta_site, &zeta_agent);
        feed.send_replace(snapshot(Instant::now(), &[(session.clone(), moved)]));
        let event = next_event(&mut body).await.unwrap();
        assert!(event.contains("zeta-pc") && !event.contains("acme-pc"), "{event}");

        feed.send_replace(snapshot(
            Instant::now(),
            &[(SessionKey::of("someone else"), viewer.clone())],
        ));
        let event = next_event(&mut body).await.unwrap();
        assert!(event.starts_with("event: signed-out\n"), "{event}");
        assert!(next_event(&mut body).await.is_none(), "the stream ends");
    }
}
