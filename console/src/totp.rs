//! TOTP (RFC 6238: HMAC-SHA-1, 6 digits, 30-second steps, one step of clock
//! skew either way) for the console's second factor: new secrets, checking a
//! code, and the `otpauth://` URL and its QR code for authenticator apps.
//!
//! Checking yields the time step the code matched; the store accepts a step
//! only if it is later than the last one accepted, so each code works once.
use std::time::{SystemTime, UNIX_EPOCH};

use totp_rs::{Builder, Secret};

/// A new secret: 160 random bits, the length RFC 4226 recommends.
pub(crate) fn new_secret() -> Vec<u8> {
    rand::random::<[u8; 20]>().to_vec()
}

/// The secret as people type it into an app: base32, no padding.
pub(crate) fn secret_text(secret: &[u8]) -> String {
    Secret::from(secret.to_vec()).to_base32()
}

/// The time step `code` matches now (within one step either way), if any.
pub(crate) fn check(secret: &[u8], code: &str) -> Option<i64> {
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let totp = Builder::new().with_secret(secret.to_vec()).build().ok()?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH).ok()?.as_secs();
    totp.check(&code, now).and_then(|step| i64::try_from(step).ok())
}

/// The `otpauth://` URL authenticator apps read from the QR code.
pub(crate) fn otpauth_url(username: &str, secret: &[u8]) -> String {
    let label: String = username
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    format!(
        "otpauth://totp/Outpost:{label}?secret={}&issuer=Outpost&algorithm=SHA1&digits=6&period=30",
        secret_text(secret)
    )
}

/// `text` as a QR code, an SVG document (served from its own URL: the
/// Content-Security-Policy allows no `data:` images).
pub(crate) fn qr_svg(text: &str) -> Option<String> {
    let qr = qrcodegen::QrCode::encode_text(text, qrcodegen::QrCodeEcc::Medium).ok()?;
    let size = qr.size();
    let border = 4;
    let mut path = String::new();
    for y in 0..size {
        for x in 0..size {
            if qr.get_module(x, y) {
                path.push_str(&format!("M{},{}h1v1h-1z", x + border, y + border));
            }
        }
    }
    let dim = size + 2 * border;
    Some(format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" \
         viewBox=\"0 0 {dim} {dim}\" width=\"{w}\" height=\"{w}\" shape-rendering=\"crispEdges\">\
         <rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/><path d=\"{path}\" fill=\"#000000\"/></svg>\n",
        w = dim * 6
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6238_sha1_vector() {
        // RFC 6238 appendix B: the ASCII secret "12345678901234567890", T = 59 s
        // gives 94287082 in 8 digits; the low 6 digits are 287082.
        let totp = Builder::new()
            .with_secret(b"12345678901234567890".to_vec())
            .build()
            .expect("totp");
        assert_eq!(totp.generate(59).to_string(), "287082");
    }

    #[test]
    fn checks_the_current_code_and_refuses_others() {
        let secret = new_secret();
        let totp = Builder::new().with_secret(secret.clone()).build().expect("totp");
        let now = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_secs();
        let code = totp.generate(now).to_string();
        let step = check(&secret, &code).expect("current code accepted");
        assert!((step - (now / 30) as i64).abs() <= 1);
        let wrong = format!("{:06}", (code.parse::<u32>().expect("digits") + 1) % 1_000_000);
        assert!(check(&secret, &wrong).is_none());
        assert!(check(&secret, "12345").is_none());
        assert!(check(&secret, "abcdef").is_none());
    }

    #[test]
    fn qr_code_is_svg() {
        let svg = qr_svg(&otpauth_url("ann@example.com", &new_secret())).expect("svg");
        assert!(svg.contains("<svg") && svg.contains("<path"));
        assert!(otpauth_url("ann@example.com", b"x").contains("Outpost:ann%40example.com"));
    }
}
