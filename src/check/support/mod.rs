//! The check kinds' shared toolkit: one failure classifier, one error-chain
//! renderer, one capped HTTP call (and its lean
//! HTTP/1.1 path), one latency judgement, one rustls setup.

pub mod classify;
pub mod errors;
pub mod h1;
pub mod h1_response;
pub mod http;
pub mod latency;
pub mod plain_url;
#[cfg(test)]
pub mod test_server;
pub mod tls;
