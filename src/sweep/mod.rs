//! Reliability sweeps: many checks at once, bounded concurrency, latency
//! samples, baselines, shards — and one sealed bundle per sweep.

pub mod baseline;
pub mod input;
mod journal;
pub mod plan;
mod prefetch;
pub mod run;
pub mod select;
pub mod stats;
pub mod tally;
