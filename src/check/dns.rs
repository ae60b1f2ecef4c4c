//! `dns`: a name resolves through the system resolver, optionally to
//! expected addresses and address families.
//!
//! The system resolver (getaddrinfo) is used on purpose: it is what the
//! deployed software will use, /etc/hosts included.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::time::Instant;

use serde::Deserialize;

use super::{Observation, ProbeContext};
use crate::core::duration::{format_duration, HumanDuration};
use crate::core::template::Template;

/// `check = "dns"`.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DnsCheck {
    /// The name to resolve.
    pub name: Template,
    /// What the answer must hold (default: at least one record).
    #[serde(default)]
    pub expect: DnsExpect,
}

/// Address families a name must resolve to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
pub enum RecordType {
    /// IPv4.
    A,
    /// IPv6.
    #[serde(rename = "AAAA")]
    Aaaa,
}

/// `expect` for `dns`.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DnsExpect {
    /// Addresses that must all be among the answers.
    #[serde(default)]
    pub addresses: Vec<IpAddr>,
    /// Record types that must each have at least one answer (`"A"`, `"AAAA"`).
    #[serde(default)]
    pub record_types: Vec<RecordType>,
    #[serde(default)]
    pub max_latency: Option<HumanDuration>,
}

impl DnsCheck {
    pub(super) fn target(&self) -> String {
        self.name.raw().to_string()
    }

    pub(super) fn validate(&self) -> Vec<(String, std::ops::Range<usize>)> {
        let raw = self.name.raw();
        if raw.contains("://") || raw.contains('/') {
            vec![(
                "`name` is a host name, not a URL".to_string(),
                self.name.span(),
            )]
        } else {
            Vec::new()
        }
    }

    pub(super) async fn probe(&self, ctx: &ProbeContext<'_>) -> Observation {
        let name = match ctx.render(&self.name) {
            Ok(name) => name,
            Err(obs) => return obs,
        };
        let started = Instant::now();
        // Port 0: only the addresses matter.
        let lookup =
            tokio::time::timeout(ctx.timeout, tokio::net::lookup_host((name.as_str(), 0))).await;
        let latency = started.elapsed();
        let answers: BTreeSet<IpAddr> = match lookup {
            Ok(Ok(addrs)) => addrs.map(|a| a.ip()).collect(),
            Ok(Err(err)) => {
                return Observation::fail_unclassified(format!("{name} does not resolve: {err}"))
                    .with_detail("latency_ms", latency.as_millis() as u64)
            }
            Err(_) => {
                return Observation::fail_unclassified(format!(
                    "resolving {name} timed out after {}",
                    format_duration(ctx.timeout)
                ))
            }
        };
        let listed = answers.iter().map(IpAddr::to_string).collect::<Vec<_>>();
        let mut failures = Vec::new();
        if answers.is_empty() {
            failures.push(format!("{name} resolves to no address"));
        }
        let missing: Vec<String> = self
            .expect
            .addresses
            .iter()
            .filter(|a| !answers.contains(a))
            .map(IpAddr::to_string)
            .collect();
        if !missing.is_empty() {
            failures.push(format!(
                "{name} does not resolve to {} (got {})",
                missing.join(", "),
                listed.join(", ")
            ));
        }
        for record_type in &self.expect.record_types {
            let (label, present) = match record_type {
                RecordType::A => ("A", answers.iter().any(IpAddr::is_ipv4)),
                RecordType::Aaaa => ("AAAA", answers.iter().any(IpAddr::is_ipv6)),
            };
            if !present {
                failures.push(format!(
                    "{name} has no {label} answer (got {})",
                    listed.join(", ")
                ));
            }
        }
        if let Some(max) = &self.expect.max_latency {
            if latency > max.0 {
                failures.push(format!(
                    "resolving took {}, more than {}",
                    format_duration(latency),
                    format_duration(max.0)
                ));
            }
        }
        let obs = if failures.is_empty() {
            Observation::pass()
        } else {
            Observation::fail_unclassified(failures.join("; "))
        };
        obs.with_detail("addresses", listed)
            .with_detail("latency_ms", latency.as_millis() as u64)
    }
}
