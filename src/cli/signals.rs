//! Signals: the first SIGINT/SIGTERM cancels the run gracefully through the
//! engine's [`Cancel`] flag; a second one ends the process at once, because an
//! operator who presses Ctrl-C twice wants out even if sealing hangs.

use crate::cli::exit::ExitStatus;
use crate::engine::Cancel;

/// Listens for SIGINT and SIGTERM: the first cancels `cancel`, the second
/// exits the process with code 130 without waiting for anything.
pub fn install_signal_handlers(cancel: &Cancel) -> std::io::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    let cancel = cancel.clone();
    tokio::spawn(async move {
        let mut received = 0;
        loop {
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
            received += 1;
            if received == 1 {
                eprintln!("runproof: interrupted; recording the attempt in flight and sealing the bundle (press Ctrl-C again to abort)");
                cancel.cancel();
            } else {
                eprintln!("runproof: aborted; the journal is valid up to its last record, but the bundle is not sealed");
                std::process::exit(ExitStatus::Interrupted.code().into());
            }
        }
    });
    Ok(())
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM: how `webhook listen` is stopped.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
