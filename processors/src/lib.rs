//! RobotOrchestra processors: the pure game domain ([`game`]) and the robot workers.

pub mod game;
pub mod robots;
pub mod streams;
