//! `/login`, both ways RouterOS has known:
//!
//! - since 6.43: `/login =name=U =password=P` → `!done`;
//! - before (the device's `legacy-login` switch): `/login` → `!done =ret=<32
//!   hex challenge>`, then `/login =name=U =response=00<hex md5(0x00 ‖
//!   password ‖ challenge)>`. A legacy router also answers a plaintext
//!   attempt with a challenge, which is how clients detect it.
//!
//! Wrong credentials give `!trap =message=invalid user name or password (6)`
//! (legacy: `cannot log in`) and `!done`; the connection stays open. A user
//! without the `api` policy gets `not allowed (9)`.

use std::net::IpAddr;
use std::time::SystemTime;

use md5::{Digest, Md5};
use rand::Rng;
use rand::rngs::StdRng;

use crate::device::Device;
use crate::request::Request;

/// Reply sentences, without the tag (the caller adds it).
pub(crate) type Replies = Vec<Vec<String>>;

#[derive(Debug, Default)]
pub(crate) struct Login {
    challenge: Option<[u8; 16]>,
}

fn trap(message: &str) -> Replies {
    vec![
        vec!["!trap".to_owned(), format!("=message={message}")],
        vec!["!done".to_owned()],
    ]
}

/// `00` + hex md5(0x00 ‖ password ‖ challenge).
pub fn legacy_response(password: &str, challenge: &[u8]) -> String {
    let mut h = Md5::new();
    h.update([0u8]);
    h.update(password.as_bytes());
    h.update(challenge);
    format!("00{}", hex::encode(h.finalize()))
}

impl Login {
    /// Handles one `/login`; answers the replies and whether the session is
    /// now logged in.
    pub(crate) fn handle(&mut self, dev: &Device, req: &Request, peer: IpAddr, rng: &mut StdRng) -> (Replies, bool) {
        let mut st = dev.state();
        let legacy = st.faults.legacy_login;
        let name = req.attr("name");
        let wall = SystemTime::now();
        let outcome = match (req.attr("password"), req.attr("response")) {
            (_, Some(response)) if legacy => {
                let ok = self
                    .challenge
                    .take()
                    .is_some_and(|c| name == Some(st.user.as_str()) && legacy_response(&st.password, &c) == response);
                if ok { Ok(()) } else { Err("cannot log in") }
            }
            (Some(password), None) if !legacy => {
                if name == Some(st.user.as_str()) && password == st.password {
                    Ok(())
                } else {
                    Err("invalid user name or password (6)")
                }
            }
            _ if legacy => {
                let c: [u8; 16] = rng.r#gen();
                self.challenge = Some(c);
                return (
                    vec![vec!["!done".to_owned(), format!("=ret={}", hex::encode(c))]],
                    false,
                );
            }
            _ => Err("invalid user name or password (6)"),
        };
        let who = name.unwrap_or("").to_owned();
        match outcome {
            Ok(()) if st.faults.no_api_policy => {
                st.push_log(
                    wall,
                    "system,error,critical",
                    format!("login failure for user {who} from {peer} via api"),
                );
                (trap("not allowed (9)"), false)
            }
            Ok(()) => {
                st.push_log(
                    wall,
                    "system,info,account",
                    format!("user {who} logged in from {peer} via api"),
                );
                (vec![vec!["!done".to_owned()]], true)
            }
            Err(message) => {
                st.push_log(
                    wall,
                    "system,error,critical",
                    format!("login failure for user {who} from {peer} via api"),
                );
                (trap(message), false)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The API manual's transcript: challenge 856780b7411eefd3abadee2058c149a3,
    /// empty password, response 005062f7a5ef124d34675bf3e81f56c556.
    #[test]
    fn legacy_response_matches_the_manual() {
        let c = hex::decode("856780b7411eefd3abadee2058c149a3").expect("hex");
        assert_eq!(legacy_response("", &c), "005062f7a5ef124d34675bf3e81f56c556");
        let c: Vec<u8> = (0..16).collect();
        assert_eq!(legacy_response("admin", &c), "008332cfc643e3c027333fff658dfb93ae");
    }
}
