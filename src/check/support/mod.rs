//! The check kinds' shared toolkit: one failure classifier, one error-chain
//! renderer, one capped HTTP call, one latency judgement, one rustls setup.

pub mod classify;
pub mod errors;
pub mod http;
pub mod latency;
pub mod tls;
