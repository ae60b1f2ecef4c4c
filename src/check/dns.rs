//! `dns`: a name resolves through the run's resolver (the system
//! configuration with /etc/hosts, or `--resolver` / the step's `resolver`),
//! to expected addresses and address families, or — with `record_type` — to
//! expected A, AAAA, CNAME, MX, TXT or CAA answers.
//!
//! A name that does not exist (NXDOMAIN) fails at once: retries cannot
//! create it.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::time::Instant;

use hickory_resolver::proto::rr::RecordType as WireType;
use serde::Deserialize;

use super::expect::Operand;
use super::resolve::{ResolveError, ResolverAddr};
use super::support::latency;
use super::{FailureClass, Observation, ProbeContext};
use crate::core::duration::{format_duration, HumanDuration};
use crate::core::template::{Scope, Template};

/// `check = "dns"`.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DnsCheck {
    /// The DNS server (`IP:port`) to ask, instead of the run's resolver.
    #[serde(default)]
    pub resolver: Option<ResolverAddr>,
    /// The name to resolve.
    pub name: Template,
    /// Ask for one record type (`type` works too); without it the name's
    /// addresses (A and AAAA) are looked up.
    #[serde(default, alias = "type")]
    pub record_type: Option<QueryType>,
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

/// The record types `record_type` can ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
pub enum QueryType {
    A,
    #[serde(rename = "AAAA")]
    Aaaa,
    #[serde(rename = "CNAME")]
    Cname,
    #[serde(rename = "MX")]
    Mx,
    #[serde(rename = "TXT")]
    Txt,
    #[serde(rename = "CAA")]
    Caa,
}

impl QueryType {
    fn wire(self) -> WireType {
        match self {
            QueryType::A => WireType::A,
            QueryType::Aaaa => WireType::AAAA,
            QueryType::Cname => WireType::CNAME,
            QueryType::Mx => WireType::MX,
            QueryType::Txt => WireType::TXT,
            QueryType::Caa => WireType::CAA,
        }
    }

    fn is_address(self) -> bool {
        matches!(self, QueryType::A | QueryType::Aaaa)
    }
}

/// `expect` for `dns`.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DnsExpect {
    /// Addresses that must all be among the answers.
    #[serde(default)]
    pub addresses: Vec<IpAddr>,
    /// Record types that must each have at least one answer (`"A"`, `"AAAA"`);
    /// for the address lookup (no `record_type`).
    #[serde(default)]
    pub record_types: Vec<RecordType>,
    /// Answers that must all be present, as written in a zone file without
    /// the final dot: `"mail.example.com"` (CNAME), `"10 mail.example.com"`
    /// (MX), the whole text (TXT), `0 issue "letsencrypt.org"` (CAA).
    /// Names compare case-insensitively.
    /// Templates allowed.
    #[serde(default)]
    pub values: Vec<Template>,
    /// Text some answer must contain (e.g. `"v=spf1"` in a TXT record;
    /// templates allowed).
    #[serde(default)]
    pub contains: Option<Template>,
    #[serde(default)]
    pub max_latency: Option<HumanDuration>,
}

impl DnsCheck {
    pub(super) fn target(&self) -> String {
        match self.record_type {
            Some(kind) => format!("{} {}", self.name.raw(), kind.wire()),
            None => self.name.raw().to_string(),
        }
    }

    pub(super) fn validate(&self) -> Vec<(String, std::ops::Range<usize>)> {
        let mut problems = Vec::new();
        let raw = self.name.raw();
        if raw.contains("://") || raw.contains('/') {
            problems.push((
                "`name` is a host name, not a URL".to_string(),
                self.name.span(),
            ));
        }
        match self.record_type {
            None if !self.expect.values.is_empty() || self.expect.contains.is_some() => {
                problems.push((
                    "`expect.values` and `expect.contains` need `record_type` (A, AAAA, CNAME, MX, TXT or CAA)"
                        .to_string(),
                    self.name.span(),
                ))
            }
            Some(_) if !self.expect.record_types.is_empty() => problems.push((
                "`expect.record_types` is for the address lookup; with `record_type` set, expect `values` or `contains`"
                    .to_string(),
                self.name.span(),
            )),
            Some(kind) if !kind.is_address() && !self.expect.addresses.is_empty() => problems
                .push((
                    format!(
                        "`expect.addresses` needs `record_type` A or AAAA, not {}",
                        kind.wire()
                    ),
                    self.name.span(),
                )),
            _ => {}
        }
        problems
    }

    pub(super) async fn probe(&self, ctx: &ProbeContext<'_>) -> Observation {
        let name = match ctx.render(&self.name) {
            Ok(name) => name,
            Err(obs) => return obs,
        };
        let resolver = ctx.clients.resolver(self.resolver);
        let started = Instant::now();
        let lookup = tokio::time::timeout(ctx.timeout, async {
            match self.record_type {
                None => resolver
                    .lookup_ip(&name)
                    .await
                    .map(|addrs| addrs.iter().map(IpAddr::to_string).collect::<Vec<_>>()),
                Some(kind) => resolver.lookup(&name, kind.wire()).await.map(|answers| {
                    answers
                        .into_iter()
                        .map(|answer| answer.value)
                        .collect::<Vec<_>>()
                }),
            }
        })
        .await;
        let latency = started.elapsed();
        let answers = match lookup {
            Ok(Ok(answers)) => answers,
            Ok(Err(err)) => {
                return failed_lookup(&err)
                    .with_detail("resolver", resolver.server())
                    .with_detail("latency_ms", latency.as_millis() as u64)
            }
            Err(_) => {
                return Observation::fail(
                    FailureClass::Timeout,
                    format!(
                        "resolving {name} timed out after {}",
                        format_duration(ctx.timeout)
                    ),
                )
                .with_detail("resolver", resolver.server())
            }
        };
        let mut failures = Vec::new();
        match self.record_type {
            None => self.check_addresses(&name, &answers, &mut failures),
            Some(kind) => self.check_records(&name, kind, &answers, ctx.scope, &mut failures),
        }
        failures.extend(latency::exceeded(
            "resolving",
            latency,
            self.expect.max_latency.as_ref(),
        ));
        let obs = if failures.is_empty() {
            Observation::pass()
        } else {
            // No answer at all is the name not resolving; wrong answers and
            // slowness are unmet expectations.
            let class = if answers.is_empty() {
                FailureClass::Dns
            } else {
                FailureClass::Expectation
            };
            Observation::fail(class, failures.join("; "))
        };
        let obs = match self.record_type {
            None => obs.with_detail("addresses", answers),
            Some(kind) => obs
                .with_detail("record_type", kind.wire().to_string())
                .with_detail("answers", answers),
        };
        obs.with_detail("resolver", resolver.server())
            .with_detail("latency_ms", latency.as_millis() as u64)
    }

    /// The address lookup's expectations (`addresses`, `record_types`).
    fn check_addresses(&self, name: &str, listed: &[String], failures: &mut Vec<String>) {
        let answers: BTreeSet<IpAddr> = listed.iter().filter_map(|a| a.parse().ok()).collect();
        if answers.is_empty() {
            failures.push(format!("{name} resolves to no address"));
        }
        self.check_expected_addresses(name, &answers, listed, failures);
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
    }

    fn check_expected_addresses(
        &self,
        name: &str,
        answers: &BTreeSet<IpAddr>,
        listed: &[String],
        failures: &mut Vec<String>,
    ) {
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
    }

    /// A typed lookup's expectations (`values`, `contains`, `addresses`).
    fn check_records(
        &self,
        name: &str,
        kind: QueryType,
        answers: &[String],
        scope: &dyn Scope,
        failures: &mut Vec<String>,
    ) {
        let label = kind.wire();
        let got = if answers.is_empty() {
            "no answer".to_string()
        } else {
            format!("got {}", answers.join(", "))
        };
        if answers.is_empty() {
            failures.push(format!("{name} has no {label} record"));
        }
        if kind.is_address() {
            let addrs: BTreeSet<IpAddr> = answers.iter().filter_map(|a| a.parse().ok()).collect();
            self.check_expected_addresses(name, &addrs, answers, failures);
        }
        let mut missing: Vec<String> = Vec::new();
        for want in &self.expect.values {
            match Operand::render("expect.values", want, scope) {
                Ok(want)
                    if answers
                        .iter()
                        .any(|have| same_value(kind, &want.value, have)) => {}
                Ok(want) => missing.push(want.shown),
                Err(err) => failures.push(err),
            }
        }
        if !missing.is_empty() {
            failures.push(format!(
                "{name} has no {label} answer {} ({got})",
                missing
                    .iter()
                    .map(|v| format!("`{v}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        if let Some(needle) = &self.expect.contains {
            match Operand::render("expect.contains", needle, scope) {
                Ok(needle)
                    if answers
                        .iter()
                        .any(|have| have.contains(needle.value.as_str())) => {}
                Ok(needle) => failures.push(format!(
                    "no {label} answer of {name} contains `{}` ({got})",
                    needle.shown
                )),
                Err(err) => failures.push(err),
            }
        }
    }
}

/// Whether an expected value matches an answer: names without the final dot
/// and in any case; TXT and CAA text exactly.
fn same_value(kind: QueryType, want: &str, have: &str) -> bool {
    match kind {
        QueryType::Cname | QueryType::Mx => {
            want.trim().trim_end_matches('.').eq_ignore_ascii_case(have)
        }
        QueryType::A | QueryType::Aaaa => match (want.parse::<IpAddr>(), have.parse::<IpAddr>()) {
            (Ok(want), Ok(have)) => want == have,
            _ => want == have,
        },
        QueryType::Txt | QueryType::Caa => want == have,
    }
}

/// A lookup error as the attempt's failure.
fn failed_lookup(err: &ResolveError) -> Observation {
    err.failure(err.to_string())
}
