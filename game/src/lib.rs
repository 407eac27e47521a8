//! The pure RobotOrchestra game domain: no Kafka, no runtime, no clock, no randomness.
//!
//! Its own crate so the boundary is checked by the compiler: it depends on `schemas` and
//! small pure crates (serde, thiserror, sha2) only — `cargo tree -p game` shows no rdkafka,
//! tokio or async-openai. The `processors` crate adapts it to the runtime and re-exports it
//! as `processors::game`.
//!
//! * Match processor: [`decide`](decide()) (input + state → events or [`Rejection`]), [`evolve`]
//!   (state + event → state), [`due_timeouts`] (state + now → timeout events), and
//!   [`handle`] = decide then evolve.
//! * Robot orchestration: [`orchestration::Pool`] (`on_match_event`, `on_tick`), its
//!   settings [`pool_config::PoolConfig`].
//! * History view: [`history::evolve_history`]; stats: [`stats::apply_history`].
//!
//! A full round, as the runtime drives it:
//!
//! ```text
//! match.create ─▶ match.created ─▶ round.robots_needed ─▶ (pool) round.robots_assigned
//!   ─▶ round.started ─▶ (pool) generate.response ─▶ response.submit / response.submitted
//!   ─▶ response.recorded… ─▶ round.voting_started ─▶ (pool) generate.vote ─▶ vote.*
//!   ─▶ vote.recorded… ─▶ round.completed ─▶ next round… ─▶ match.completed
//! ```

pub mod config;
pub mod deadlines;
pub mod decide;
pub mod history;
pub mod ids;
pub mod input;
pub mod match_state;
pub mod orchestration;
pub mod pool_config;
pub mod prompts;
pub mod rejection;
pub mod scoring;
pub mod seats;
pub mod sequence;
pub mod stats;
pub mod templates;
mod transitions;

pub use config::GameConfig;
pub use deadlines::{due_timeouts, due_timeouts_with_grace};
pub use decide::{decide, handle, handle_in_place};
pub use input::MatchInput;
pub use match_state::{apply, empty_state, evolve, MatchStateExt, RECENT_INPUTS_CAP};
pub use orchestration::{Pool, PoolConfig, PoolOutput};
pub use rejection::{Rejection, RejectionCode};
pub use sequence::{position, Position};

#[cfg(test)]
mod tests;
