//! The second sign-in step through the router: no session before it, and
//! enrolment forced when an MSP administrator requires TOTP.
use std::time::{SystemTime, UNIX_EPOCH};

use axum::http::StatusCode;
use outpost_store::AdminScope;

use super::{Console, PASSWORD, USER, body, cookie_value, hidden_csrf, location, post_request};

fn code_now(secret_text: &str) -> String {
    let secret = totp_rs::Secret::try_from_base32(secret_text).expect("base32 secret");
    let totp = totp_rs::Builder::new()
        .with_secret(secret.as_bytes().to_vec())
        .build()
        .expect("totp");
    let now = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_secs();
    totp.generate(now).to_string()
}

#[tokio::test]
async fn sessions_from_before_the_requirement_see_only_the_set_up() {
    let c = Console::new(false).await;
    let session = c.session().await;
    assert_eq!(c.get("/", Some(&session)).await.status(), StatusCode::OK);
    c.store
        .set_totp_required(
            &AdminScope::for_tests(),
            true,
            &outpost_store::audit::Actor::local_operator(),
        )
        .await
        .unwrap();
    let res = c.get("/devices", Some(&session)).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&res), "/account/totp");
    assert_eq!(
        c.get("/api/overview", Some(&session)).await.status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(c.get("/account/totp", Some(&session)).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn required_totp_is_enrolled_before_any_session() {
    let c = Console::new(false).await;
    c.store
        .set_totp_required(
            &AdminScope::for_tests(),
            true,
            &outpost_store::audit::Actor::local_operator(),
        )
        .await
        .unwrap();

    let res = c.login(USER, PASSWORD).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&res), "/login/enrol");
    assert!(cookie_value(&res, "outpost_session").is_none(), "no session yet");
    let step = format!(
        "outpost_login_step={}",
        cookie_value(&res, "outpost_login_step").expect("half-way cookie")
    );

    // The half-way cookie opens nothing else.
    let res = c.get("/", Some(&step)).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&res), "/login");
    let res = c.get("/api/overview", Some(&step)).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);

    // The enrolment page: secret as text and as a QR code from its own URL.
    let html = body(c.get("/login/enrol", Some(&step)).await).await;
    let marker = r#"id="totp-secret" class="secret">"#;
    let start = html.find(marker).expect("secret shown") + marker.len();
    let secret = html[start..].split('<').next().unwrap().to_owned();
    let csrf = hidden_csrf(&html);
    let qr = c.get("/login/enrol/qr.svg", Some(&step)).await;
    assert_eq!(qr.status(), StatusCode::OK);
    assert_eq!(qr.headers()["content-type"], "image/svg+xml");
    assert!(body(qr).await.contains("<svg"));
    assert_eq!(c.get("/login/enrol/qr.svg", None).await.status(), StatusCode::NOT_FOUND);

    // A wrong code keeps the user there; the right one opens the session and
    // shows ten recovery codes.
    let wrong = c
        .send(post_request(
            "/login/enrol",
            Some(&step),
            &[("csrf", &csrf), ("code", "000000x")],
        ))
        .await;
    assert_eq!(wrong.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(cookie_value(&wrong, "outpost_session").is_none());
    let first = code_now(&secret);
    let res = c
        .send(post_request(
            "/login/enrol",
            Some(&step),
            &[("csrf", &csrf), ("code", &first)],
        ))
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let session = format!(
        "outpost_session={}",
        cookie_value(&res, "outpost_session").expect("session")
    );
    let html = body(res).await;
    assert_eq!(html.matches("<li><code>").count(), 10, "{html}");
    assert_eq!(c.get("/", Some(&session)).await.status(), StatusCode::OK);

    // The next sign-in asks for a code; the enrolment's code is spent.
    let res = c.login(USER, PASSWORD).await;
    assert_eq!(location(&res), "/login/code");
    let step = format!(
        "outpost_login_step={}",
        cookie_value(&res, "outpost_login_step").expect("half-way cookie")
    );
    let html = body(c.get("/login/code", Some(&step)).await).await;
    let csrf = hidden_csrf(&html);
    let res = c
        .send(post_request(
            "/login/code",
            Some(&step),
            &[("csrf", &csrf), ("code", &first)],
        ))
        .await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "a code is good once");
    assert!(cookie_value(&res, "outpost_session").is_none());
    assert!(body(res).await.contains("not valid"));
    // A forged half-way cookie gets nowhere.
    let res = c
        .send(post_request(
            "/login/code",
            Some("outpost_login_step=forged"),
            &[("csrf", &csrf), ("code", &first)],
        ))
        .await;
    assert_eq!(location(&res), "/login");
}
