//! The integration tests, one crate: the real `runproof` binary and library
//! against servers on 127.0.0.1 only — scripted HTTP servers, fixture
//! platform APIs, and a throwaway PostgreSQL and Redis the suite starts
//! itself (see `support::services`).

mod support;

mod api_flow_runbook;
mod assertions;
mod cli;
mod command_steps;
mod confirmations;
mod deploy_runbook;
mod dns;
mod escalation_logs;
mod evidence;
mod failure_classes;
mod https_client;
mod notify;
mod platform_checks;
mod report;
mod resume;
mod run;
mod runbook_diagnostics;
mod runbooks_e2e;
mod secrets;
mod shell;
mod sweep;
mod trust;
mod webhook_receivers;
mod webhook_signing;
