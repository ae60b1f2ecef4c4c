//! `tcp`: a TCP connection to host:port opens within the timeout.

use std::time::Instant;

use serde::Deserialize;

use super::resolve::ResolverAddr;
use super::{support, FailureClass, Observation, ProbeContext};
use crate::core::duration::HumanDuration;
use crate::core::numeric::Numeric;
use crate::core::template::Template;

/// `check = "tcp"`.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TcpCheck {
    /// The DNS server (`IP:port`) for this step's host names, instead of
    /// the run's resolver.
    #[serde(default)]
    pub resolver: Option<ResolverAddr>,
    /// Host name or address.
    pub host: Template,
    /// The TCP port: a number, or a template such as `"{{port}}"`.
    pub port: Numeric<u16>,
    /// What the connection must do (default: connect).
    #[serde(default)]
    pub expect: TcpExpect,
}

/// `expect` for `tcp`.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TcpExpect {
    #[serde(default)]
    pub max_latency: Option<HumanDuration>,
}

impl TcpCheck {
    pub(super) fn target(&self) -> String {
        format!("{}:{}", self.host.raw(), self.port)
    }

    pub(super) fn validate(&self) -> Vec<(String, std::ops::Range<usize>)> {
        let mut problems = Vec::new();
        if self.host.raw().contains("://") {
            problems.push((
                "`host` is a host name or address, not a URL (put the port in `port`)".to_string(),
                self.host.span(),
            ));
        }
        if self.port.literal() == Some(0) {
            problems.push((
                "`port` must be between 1 and 65535".to_string(),
                self.host.span(),
            ));
        }
        problems
    }

    pub(super) async fn probe(&self, ctx: &ProbeContext<'_>) -> Observation {
        let host = match ctx.render(&self.host) {
            Ok(host) => host,
            Err(obs) => return obs,
        };
        let port = match super::tls::render_port(&self.port, ctx) {
            Ok(port) => port,
            Err(obs) => return obs,
        };
        let started = Instant::now();
        let stream = match super::tls::connect_tcp(&host, port, ctx, self.resolver).await {
            Ok(stream) => stream,
            Err(obs) => return obs.with_detail("latency_ms", started.elapsed().as_millis() as u64),
        };
        let latency = started.elapsed();
        let mut obs = Observation::pass();
        if let Some(slow) =
            support::latency::exceeded("connecting", latency, self.expect.max_latency.as_ref())
        {
            obs = Observation::fail(FailureClass::Expectation, slow);
        }
        if let Ok(peer) = stream.peer_addr() {
            obs = obs.with_detail("peer", peer.to_string());
        }
        obs.with_detail("latency_ms", latency.as_millis() as u64)
    }
}
