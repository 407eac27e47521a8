//! What the players do: the offline robot engine's answers and the automatic human.

use processors::game::MatchStateExt;
use processors::robots::{offline, Candidate, Personalities, RobotTask, TaskKind};
use schemas::{
    Identity, MatchState, ResponseSubmitted, RobotCommand, RobotCommandData, RobotResponseData,
    VoteSubmitted,
};

/// Player id `i` of a match.
pub fn player(match_id: &str, i: u32) -> String {
    format!("{match_id}-p{i}")
}

/// The automatic human's vote: the first other seat in presentation order (or by letter).
pub fn human_pick(state: &MatchState, me: Identity) -> Identity {
    let cur = state.current.as_ref().expect("current round");
    cur.presentation
        .iter()
        .copied()
        .chain(state.seats.iter().map(|s| s.identity))
        .find(|id| *id != me)
        .expect("another seat")
}

/// The seat of a human player.
pub fn seat_of(state: &MatchState, player_id: &str) -> Identity {
    state
        .seat_of_player(player_id)
        .expect("player seated")
        .identity
}

/// The offline personality engine's answer to a robot command.
pub fn offline_answer(book: &Personalities, cmd: &RobotCommand) -> RobotResponseData {
    match &cmd.data {
        RobotCommandData::GenerateResponse(g) => {
            let task = RobotTask {
                command_id: g.command_id.clone(),
                robot_id: g.robot_id.clone(),
                personality: g.personality.clone(),
                match_id: cmd.match_id.clone(),
                round: g.round,
                identity: g.identity.to_string(),
                prompt: g.prompt.clone(),
                kind: TaskKind::Respond,
            };
            RobotResponseData::ResponseSubmitted(ResponseSubmitted {
                command_id: g.command_id.clone(),
                robot_id: g.robot_id.clone(),
                identity: g.identity.to_string(),
                round: g.round,
                text: offline::respond(book.resolve(&g.personality), &task),
                model: "offline".into(),
                latency_ms: 0,
                tokens: 0,
            })
        }
        RobotCommandData::GenerateVote(g) => {
            let task = RobotTask {
                command_id: g.command_id.clone(),
                robot_id: g.robot_id.clone(),
                personality: g.personality.clone(),
                match_id: cmd.match_id.clone(),
                round: g.round,
                identity: g.identity.to_string(),
                prompt: g.prompt.clone(),
                kind: TaskKind::Vote {
                    candidates: g
                        .candidates
                        .iter()
                        .map(|c| Candidate {
                            identity: c.identity.to_string(),
                            text: c.text.clone(),
                        })
                        .collect(),
                },
            };
            let voted_for =
                offline::vote(book.resolve(&g.personality), &task).expect("a vote has candidates");
            RobotResponseData::VoteSubmitted(VoteSubmitted {
                command_id: g.command_id.clone(),
                robot_id: g.robot_id.clone(),
                identity: g.identity.to_string(),
                round: g.round,
                voted_for,
            })
        }
    }
}
