//! PEM helpers for certificate chains and private keys on disk.
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::CertError;

/// Decodes every `CERTIFICATE` block, in order.
pub fn certificates(what: &'static str, pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, CertError> {
    let certs = rustls_pemfile::certs(&mut &pem[..])
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| CertError::Pem {
            what,
            reason: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(CertError::Pem {
            what,
            reason: "no CERTIFICATE block".into(),
        });
    }
    Ok(certs)
}

/// Decodes the first private key block.
pub fn private_key(what: &'static str, pem: &[u8]) -> Result<PrivateKeyDer<'static>, CertError> {
    rustls_pemfile::private_key(&mut &pem[..])
        .map_err(|e| CertError::Pem {
            what,
            reason: e.to_string(),
        })?
        .ok_or(CertError::Pem {
            what,
            reason: "no PRIVATE KEY block".into(),
        })
}

/// Encodes DER certificates as PEM, in order.
pub fn encode_certificates<'a>(ders: impl IntoIterator<Item = &'a [u8]>) -> String {
    use base64::Engine as _;
    let mut out = String::new();
    for der in ders {
        out.push_str("-----BEGIN CERTIFICATE-----\n");
        let b64 = base64::engine::general_purpose::STANDARD.encode(der);
        for chunk in b64.as_bytes().chunks(64) {
            // base64 output is ASCII, so every chunk is valid UTF-8.
            out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
            out.push('\n');
        }
        out.push_str("-----END CERTIFICATE-----\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificate_pem_round_trips() {
        let ders: [&[u8]; 2] = [b"first", &[0u8; 100]];
        let pem = encode_certificates(ders);
        let back = certificates("test", pem.as_bytes()).expect("our own PEM parses");
        assert_eq!(back.len(), 2);
        assert_eq!(back[0].as_ref(), b"first");
        assert_eq!(back[1].as_ref(), &[0u8; 100][..]);
    }

    #[test]
    fn empty_input_is_an_error() {
        assert!(certificates("test", b"").is_err());
        assert!(private_key("test", b"garbage").is_err());
    }
}
