//! Player tokens and the fair-play view (issue 15 item 3).
//!
//! **Tokens.** Joining a seat (`POST /matches/{id}/players`) or creating a match with
//! humans (`POST /matches`) answers a secret token per player; answering and voting
//! require it as `Authorization: Bearer <token>`. A token is
//! `v1.<hex(match id)>.<hex(player id)>.<hex(HMAC-SHA256(secret, match id NUL player id))>`:
//! no state is kept, so any API instance sharing the per-deployment secret (env
//! `ORCHESTRA_API_SECRET`; a random one per process when unset, fine for the demo's single
//! process) checks it, also after a restart. No or an unknown/forged token: `401`; a valid
//! token of another match or player than the request names: `403`. Either way nothing is
//! written to Kafka. Input is validated first, so bad input keeps answering `400`.
//!
//! **Player view.** Until a match is completed, what a player sees ([`redact`]) carries no
//! seat kinds, answer or vote sources, robot assignments (robot ids, models,
//! personalities), nor which seats have a player (player ids and names); the analyst
//! endpoints (`GET /matches/{id}`, history) keep everything. Once completed, the view is
//! the whole record: the reveal.

use axum::http::{HeaderMap, StatusCode};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::ApiError;

/// The environment variable holding the per-deployment token secret.
pub const SECRET_ENV: &str = "ORCHESTRA_API_SECRET";

/// Signs and checks player tokens.
#[derive(Clone)]
pub struct PlayerTokens {
    secret: Vec<u8>,
}

impl std::fmt::Debug for PlayerTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PlayerTokens(<secret>)")
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

fn hmac_sha256(key: &[u8], msg: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut k = [0u8; BLOCK];
    if key.len() > BLOCK {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let ipad: Vec<u8> = k.iter().map(|b| b ^ 0x36).collect();
    let opad: Vec<u8> = k.iter().map(|b| b ^ 0x5c).collect();
    let inner = Sha256::new()
        .chain_update(&ipad)
        .chain_update(msg)
        .finalize();
    Sha256::new()
        .chain_update(&opad)
        .chain_update(inner)
        .finalize()
        .into()
}

/// Compares without an early exit.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl PlayerTokens {
    /// Tokens signed with `secret`.
    pub fn new(secret: impl Into<Vec<u8>>) -> Self {
        Self {
            secret: secret.into(),
        }
    }

    /// The secret from `ORCHESTRA_API_SECRET`, or a random one for this process (logged
    /// as a warning: instances that do not share it reject each other's tokens).
    pub fn from_env() -> Self {
        match std::env::var(SECRET_ENV) {
            Ok(s) if !s.is_empty() => Self::new(s),
            _ => {
                tracing::info!(
                    "{SECRET_ENV} is not set: player tokens use a random secret of this process \
                     (set it to the same value on every API instance)"
                );
                Self::new(format!("{}{}", super::new_id(), super::new_id()))
            }
        }
    }

    fn mac(&self, match_id: &str, player_id: &str) -> [u8; 32] {
        let mut msg = Vec::with_capacity(match_id.len() + player_id.len() + 1);
        msg.extend_from_slice(match_id.as_bytes());
        msg.push(0);
        msg.extend_from_slice(player_id.as_bytes());
        hmac_sha256(&self.secret, &msg)
    }

    /// The token of `player_id` in `match_id`.
    pub fn token(&self, match_id: &str, player_id: &str) -> String {
        format!(
            "v1.{}.{}.{}",
            hex(match_id.as_bytes()),
            hex(player_id.as_bytes()),
            hex(&self.mac(match_id, player_id))
        )
    }

    /// The `(match id, player id)` a well-formed, correctly signed token names.
    pub fn verify(&self, token: &str) -> Option<(String, String)> {
        let mut parts = token.split('.');
        let (Some("v1"), Some(m), Some(p), Some(mac), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return None;
        };
        let m = String::from_utf8(unhex(m)?).ok()?;
        let p = String::from_utf8(unhex(p)?).ok()?;
        same(&unhex(mac)?, &self.mac(&m, &p)).then_some((m, p))
    }

    /// The bearer token of `headers`, checked: `401` when absent or not ours.
    pub(super) fn bearer(&self, headers: &HeaderMap) -> Result<(String, String), ApiError> {
        let token = headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        let Some(token) = token else {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "a player token is required: `Authorization: Bearer <token>` (from joining or creating the match)",
            ));
        };
        self.verify(token)
            .ok_or_else(|| ApiError::new(StatusCode::UNAUTHORIZED, "unknown player token"))
    }

    /// Checks that `headers` carry the token of `player_id` in `match_id`: `401` without
    /// a valid token, `403` for another player's or match's token.
    pub(super) fn authorize(
        &self,
        headers: &HeaderMap,
        match_id: &str,
        player_id: &str,
    ) -> Result<(), ApiError> {
        let (m, p) = self.bearer(headers)?;
        if m == match_id && p == player_id {
            Ok(())
        } else {
            Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "this token belongs to another player or match",
            ))
        }
    }
}

/// Keys never shown to a player before the reveal.
const SECRET_KEYS: &[&str] = &[
    "kind",
    "source",
    "robots",
    "robotId",
    "model",
    "personality",
    "personalityId",
    "playerId",
    "name",
    "voices",
    "assignment",
    "assignments",
    "excludeRobots",
];

/// Removes [`SECRET_KEYS`] everywhere in `v` (the player view of a match state or event
/// before the match is completed).
pub fn redact(v: &mut Value) {
    match v {
        Value::Object(o) => {
            o.retain(|k, _| !SECRET_KEYS.contains(&k.as_str()));
            o.values_mut().for_each(redact);
        }
        Value::Array(a) => a.iter_mut().for_each(redact),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc4231_case_2() {
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            hex(&mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn tokens_verify_only_with_their_secret() {
        let a = PlayerTokens::new("s1");
        let t = a.token("m1", "p1");
        assert_eq!(a.verify(&t), Some(("m1".into(), "p1".into())));
        assert_eq!(PlayerTokens::new("s2").verify(&t), None);
        assert_eq!(a.verify("v1.00.00.00"), None);
        assert_eq!(a.verify("garbage"), None);
    }
}
