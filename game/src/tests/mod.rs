//! Game-rule tests: pure, no runtime.

mod deadlines;
mod duplicates;
mod full_match;
mod harness;
mod pool;
mod proptests;
mod rejections;
mod views;
