//! The console's two cookies, read from and written to raw headers.
use axum::http::{HeaderMap, HeaderValue, header};

/// The session token from [`Store::open_session`](outpost_store::Store::open_session).
pub(crate) const SESSION: &str = "outpost_session";
/// The pre-login CSRF token, echoed by the login form.
pub(crate) const LOGIN_CSRF: &str = "outpost_login_csrf";
/// A half-way sign-in: password checked, second factor due. Not a session.
pub(crate) const LOGIN_STEP: &str = "outpost_login_step";

/// Our tokens are 43 characters; a much longer value is not ours and is not
/// worth hashing or comparing.
const MAX_VALUE_LEN: usize = 128;

/// The first cookie called `name`, across every `Cookie` header (HTTP/2 clients
/// may send one header per cookie).
pub(crate) fn get<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim_matches('"'))
        .filter(|v| !v.is_empty() && v.len() <= MAX_VALUE_LEN)
}

/// A `Set-Cookie` value for a host-only, script-inaccessible, same-site-only
/// cookie. `max_age_secs` of `None` makes a browser-session cookie.
pub(crate) fn set(name: &str, value: &str, secure: bool, max_age_secs: Option<i64>) -> Option<HeaderValue> {
    let mut cookie = format!("{name}={value}; HttpOnly; SameSite=Strict; Path=/");
    if let Some(age) = max_age_secs {
        cookie.push_str(&format!("; Max-Age={age}"));
    }
    if secure {
        cookie.push_str("; Secure");
    }
    // Only fails for bytes a header cannot carry; our tokens are base64url.
    HeaderValue::from_str(&cookie).ok()
}

/// A `Set-Cookie` value that deletes `name`.
pub(crate) fn clear(name: &str, secure: bool) -> Option<HeaderValue> {
    set(name, "", secure, Some(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(header::COOKIE, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn finds_cookie_among_several_headers() {
        let h = headers(&["a=1; outpost_sessionx=no", "b=2;outpost_session=tok; c=3"]);
        assert_eq!(get(&h, SESSION), Some("tok"));
        assert_eq!(get(&h, "a"), Some("1"));
        assert_eq!(get(&h, "missing"), None);
    }

    #[test]
    fn ignores_empty_and_oversized_values() {
        let long = format!("outpost_session={}", "x".repeat(MAX_VALUE_LEN + 1));
        assert_eq!(get(&headers(&["outpost_session="]), SESSION), None);
        assert_eq!(get(&headers(&[&long]), SESSION), None);
    }

    #[test]
    fn set_cookie_flags() {
        let v = set(SESSION, "t", true, Some(60)).unwrap();
        assert_eq!(
            v,
            "outpost_session=t; HttpOnly; SameSite=Strict; Path=/; Max-Age=60; Secure"
        );
        let v = set(SESSION, "t", false, None).unwrap();
        assert_eq!(v, "outpost_session=t; HttpOnly; SameSite=Strict; Path=/");
        assert!(set(SESSION, "bad\nvalue", false, None).is_none());
    }
}
