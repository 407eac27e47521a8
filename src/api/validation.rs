//! The bodies of players' requests and their validation (ids, names, rounds, texts,
//! votes): a `400 {"error": reason}` before anything is written.

use processors::game::templates::{template, TEMPLATES};
use processors::game::GameConfig;
use schemas::{
    Identity, MatchCreate, PlayerRef, ResponseSubmit, VoteSubmit, DEFAULT_TEMPLATE,
    DEFAULT_TOTAL_ROUNDS,
};
use serde::Deserialize;

use super::{ApiError, MAX_ID_CHARS};

pub(super) fn valid_id(what: &str, id: &str) -> Result<(), ApiError> {
    if id.is_empty() {
        return Err(ApiError::bad_request(format!("{what} must not be empty")));
    }
    if id.chars().count() > MAX_ID_CHARS {
        return Err(ApiError::bad_request(format!(
            "{what} is longer than {MAX_ID_CHARS} characters"
        )));
    }
    if id.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(ApiError::bad_request(format!(
            "{what} must not contain whitespace or control characters"
        )));
    }
    Ok(())
}

/// Body of `POST /matches`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct CreateBody {
    pub(super) template: Option<String>,
    pub(super) total_rounds: Option<u32>,
    pub(super) humans: Option<Vec<PlayerBody>>,
    /// This match's response window (ms; absent: the processor's).
    pub(super) response_window_ms: Option<u64>,
    /// This match's voting window (ms; absent: the processor's).
    pub(super) voting_window_ms: Option<u64>,
}

/// A human: body of `POST /matches/{id}/players` and an element of `humans`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct PlayerBody {
    pub(super) player_id: String,
    pub(super) name: String,
}

/// Body of `POST /matches/{id}/responses`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct ResponseBody {
    pub(super) player_id: String,
    pub(super) round: u32,
    pub(super) text: String,
}

/// Body of `POST /matches/{id}/votes`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct VoteBody {
    pub(super) player_id: String,
    pub(super) round: u32,
    pub(super) voted_for: String,
}

pub(super) fn valid_player(p: &PlayerBody, cfg: &GameConfig) -> Result<PlayerRef, ApiError> {
    valid_player_id(&p.player_id, cfg)?;
    let name = p.name.trim();
    if name.is_empty() {
        return Err(ApiError::bad_request("name must not be empty"));
    }
    if name.chars().count() > cfg.max_name_chars {
        return Err(ApiError::bad_request(format!(
            "name is longer than {} characters",
            cfg.max_name_chars
        )));
    }
    if name.chars().any(char::is_control) {
        return Err(ApiError::bad_request(
            "name must not contain control characters",
        ));
    }
    Ok(PlayerRef {
        player_id: p.player_id.clone(),
        name: name.to_string(),
    })
}

fn valid_player_id(id: &str, cfg: &GameConfig) -> Result<(), ApiError> {
    valid_id("playerId", id)?;
    if id.chars().count() > cfg.max_player_id_chars {
        return Err(ApiError::bad_request(format!(
            "playerId is longer than {} characters",
            cfg.max_player_id_chars
        )));
    }
    Ok(())
}

fn valid_round(round: u32, cfg: &GameConfig) -> Result<(), ApiError> {
    if round == 0 || round > cfg.max_rounds {
        return Err(ApiError::bad_request(format!(
            "round must be between 1 and {}",
            cfg.max_rounds
        )));
    }
    Ok(())
}

pub(super) fn validate_create(body: CreateBody, cfg: &GameConfig) -> Result<MatchCreate, ApiError> {
    let name = body
        .template
        .unwrap_or_else(|| DEFAULT_TEMPLATE.to_string());
    let Some(t) = template(&name) else {
        let known: Vec<&str> = TEMPLATES.iter().map(|t| t.name).collect();
        return Err(ApiError::bad_request(format!(
            "unknown template `{name}` (known: {})",
            known.join(", ")
        )));
    };
    let total_rounds = body.total_rounds.unwrap_or(DEFAULT_TOTAL_ROUNDS);
    if total_rounds < cfg.min_rounds || total_rounds > cfg.max_rounds {
        return Err(ApiError::bad_request(format!(
            "totalRounds must be between {} and {}",
            cfg.min_rounds, cfg.max_rounds
        )));
    }
    if let Err((field, ms)) = cfg.match_windows(body.response_window_ms, body.voting_window_ms) {
        return Err(ApiError::bad_request(format!(
            "{field} must be between {} and {} (milliseconds), got {ms}",
            cfg.min_window_ms, cfg.max_window_ms
        )));
    }
    let humans = body.humans.unwrap_or_default();
    if humans.len() > t.humans as usize {
        return Err(ApiError::bad_request(format!(
            "template `{}` has {} human seat(s); {} humans given",
            t.name,
            t.humans,
            humans.len()
        )));
    }
    let mut players = Vec::with_capacity(humans.len());
    for h in &humans {
        let p = valid_player(h, cfg)?;
        if players
            .iter()
            .any(|q: &PlayerRef| q.player_id == p.player_id)
        {
            return Err(ApiError::bad_request(format!(
                "playerId `{}` is given twice",
                p.player_id
            )));
        }
        players.push(p);
    }
    Ok(MatchCreate {
        template: t.name.to_string(),
        total_rounds,
        humans: players,
        response_window_ms: body.response_window_ms,
        voting_window_ms: body.voting_window_ms,
    })
}

pub(super) fn validate_response(
    body: ResponseBody,
    cfg: &GameConfig,
) -> Result<ResponseSubmit, ApiError> {
    valid_player_id(&body.player_id, cfg)?;
    valid_round(body.round, cfg)?;
    if body.text.trim().is_empty() {
        return Err(ApiError::bad_request("text must not be empty"));
    }
    let chars = body.text.chars().count();
    if chars > cfg.max_text_chars {
        return Err(ApiError::bad_request(format!(
            "text is {chars} characters long; at most {} are allowed",
            cfg.max_text_chars
        )));
    }
    Ok(ResponseSubmit {
        player_id: body.player_id,
        round: body.round,
        text: body.text,
    })
}

pub(super) fn validate_vote(body: VoteBody, cfg: &GameConfig) -> Result<VoteSubmit, ApiError> {
    valid_player_id(&body.player_id, cfg)?;
    valid_round(body.round, cfg)?;
    if Identity::parse(&body.voted_for).is_none() {
        return Err(ApiError::bad_request(format!(
            "votedFor must be one identity letter A–H, got {:?}",
            body.voted_for
        )));
    }
    Ok(VoteSubmit {
        player_id: body.player_id,
        round: body.round,
        voted_for: body.voted_for,
    })
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;

    use super::*;

    #[test]
    fn validation_gives_reasons() {
        let cfg = GameConfig::default();
        let e = validate_create(
            CreateBody {
                template: Some("chess".into()),
                ..Default::default()
            },
            &cfg,
        )
        .unwrap_err();
        assert!(e.body["error"]
            .as_str()
            .unwrap()
            .contains("unknown template"));
        let c = validate_create(CreateBody::default(), &cfg).unwrap();
        assert_eq!((c.template.as_str(), c.total_rounds), ("classic_1v3", 5));
        let e = validate_create(
            CreateBody {
                total_rounds: Some(0),
                ..Default::default()
            },
            &cfg,
        )
        .unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        let long = ResponseBody {
            player_id: "p1".into(),
            round: 1,
            text: "x".repeat(2001),
        };
        assert!(validate_response(long, &cfg).is_err());
        let ok = ResponseBody {
            player_id: "p1".into(),
            round: 1,
            text: "é".repeat(2000),
        };
        assert!(validate_response(ok, &cfg).is_ok());
        let vote = VoteBody {
            player_id: "p1".into(),
            round: 1,
            voted_for: "Z".into(),
        };
        assert!(validate_vote(vote, &cfg).is_err());
        let two = CreateBody {
            template: Some("classic_1v3".into()),
            humans: Some(vec![
                PlayerBody {
                    player_id: "a".into(),
                    name: "A".into(),
                },
                PlayerBody {
                    player_id: "b".into(),
                    name: "B".into(),
                },
            ]),
            ..Default::default()
        };
        assert!(validate_create(two, &cfg).is_err());
        let fast = CreateBody {
            response_window_ms: Some(30_000),
            voting_window_ms: Some(20_000),
            ..Default::default()
        };
        let c = validate_create(fast, &cfg).unwrap();
        assert_eq!(
            (c.response_window_ms, c.voting_window_ms),
            (Some(30_000), Some(20_000))
        );
        let blink = CreateBody {
            voting_window_ms: Some(5),
            ..Default::default()
        };
        let e = validate_create(blink, &cfg).unwrap_err();
        assert!(e.body["error"].as_str().unwrap().contains("votingWindowMs"));
    }
}
