//! RobotOrchestra processors: the game plugged into the runtime.
//!
//! * [`streams`]: the topology's processors — adapters that decode records, call the pure
//!   game and write stores and outputs — and [`streams::game_topology`], which declares
//!   them.
//! * [`robots`]: the robot workers (async-openai, offline personalities, resilience).
//! * [`metrics`]: the names of the game's metrics.
//!
//! The game itself (decide/evolve, templates, scoring, pool rules, history and stats folds)
//! lives in the `game` crate, which depends on `schemas` and small pure crates only; it is
//! re-exported here as [`game`] so `processors::game::…` paths keep working.

pub use ::game;

pub mod metrics;
pub mod robots;
pub mod streams;
