//! RobotOrchestra processors: the pure game domain ([`game`]), the topology's processors
//! ([`streams`]), the robot workers ([`robots`]) and their metrics ([`metrics`]).

pub mod game;
pub mod metrics;
pub mod robots;
pub mod streams;
