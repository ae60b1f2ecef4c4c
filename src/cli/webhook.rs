//! `runproof webhook sign|verify|listen`: flags in, the webhook module's
//! functions called, their errors mapped to exit codes.

use super::args::{WebhookArgs, WebhookCommand};
use super::CliError;
use crate::cli::exit::ExitStatus;
use crate::session::{self, listen::ListenArgs};
use crate::webhook::{self, SignArgs, VerifyArgs, WebhookError};

pub async fn webhook(args: WebhookArgs) -> Result<ExitStatus, CliError> {
    let failed = |err: WebhookError| CliError {
        status: ExitStatus::from(&err),
        message: err.to_string(),
    };
    match args.command {
        WebhookCommand::Sign(a) => {
            let text = webhook::sign_command(&SignArgs {
                secret_env: a.secret_env,
                timestamp: a.timestamp,
                delivery: a.delivery,
                curl: a.curl,
                body_file: a.body_file,
            })
            .map_err(failed)?;
            out!("{}", text.trim_end_matches('\n'));
            Ok(ExitStatus::Success)
        }
        WebhookCommand::Verify(a) => {
            let text = webhook::verify_command(&VerifyArgs {
                secret_env: a.secret_env,
                signature: a.signature,
                timestamp: a.timestamp,
                max_age: a.max_age,
                now: a.now,
                body_file: a.body_file,
            })
            .map_err(failed)?;
            out!("{text}");
            Ok(ExitStatus::Success)
        }
        WebhookCommand::Listen(a) => {
            let mut listen = ListenArgs::new(a.addr, a.secret_env);
            listen.artifacts = a.artifacts;
            listen.max_age = a.max_age;
            listen.provenance = super::provenance::resolve(&a.provenance, Vec::new())?;
            let summary = session::listen::listen_command(
                &listen,
                &webhook::process_env,
                super::signals::shutdown_signal(),
                |line| out!("{line}"),
            )
            .await
            .map_err(failed)?;
            out!(
                "listener stopped: {} accepted, {} rejected\nbundle: {}",
                summary.accepted,
                summary.rejected,
                summary.bundle.display()
            );
            Ok(ExitStatus::Success)
        }
    }
}
