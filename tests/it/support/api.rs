//! Every library path the integration tests use, in one place: when the
//! library's modules move, only this file is re-pointed. Tests import from
//! here (`crate::support::api::…`), never from `runproof::…` directly.

/// Check kinds and what a probe needs and returns.
pub mod check {
    pub use runproof::check::{
        BlobRef, BlobSink, CheckSpec, Clients, Observation, Outcome, ProbeContext, KINDS,
    };
    pub use runproof::core::{Failure, FailureClass};
    pub use runproof::engine::retry::no_retry_reason;
}

/// Exit statuses of the binary.
pub mod exit {
    pub use runproof::cli::exit::ExitStatus;
}

/// Runbook and check-file loading.
pub mod runbook {
    pub use runproof::core::template::Scope;
    pub use runproof::runbook::load::load_check_file_with_env;
    pub use runproof::runbook::model::OnEscalate;
    pub use runproof::runbook::{expiry_warning, load_runbook_str_with_env, LoadError, Runbook};
}

/// Sweep input, planning and sharding.
pub mod sweep {
    pub use runproof::sweep::input::{input_files, load_input, plan};
    pub use runproof::sweep::select::Shard;
}

/// Chatwoot signing, sample events, the delivery listener and the commands.
pub mod webhook {
    pub use runproof::session::listen::{listen_command, ListenArgs};
    pub use runproof::webhook::command::{sign_command_with, verify_command_with};
    pub use runproof::webhook::events::{iso_millis, sample_body, SampleEvent, SampleParams};
    pub use runproof::webhook::signature::{
        sign, sign_body_only, verify, SignatureError, DEFAULT_MAX_AGE,
    };
    pub use runproof::webhook::{Listener, ListenerConfig, SignArgs, VerifyArgs, WebhookError};
}
