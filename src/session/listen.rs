//! `webhook listen` as a session: bind the receiver, open a `listen` bundle,
//! record every delivery as it arrives, and seal when told to stop. The
//! receiver itself ([`crate::webhook::listener`]) knows nothing of bundles.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::core::record::{BundleKind, Event, Header, RunVerdict, SourceRef};
use crate::evidence::{BundleWriter, Redactor, SyncPolicy};
use crate::report;
use crate::webhook::listener::{Delivery, Listener, ListenerConfig, DEFAULT_MAX_BODY};
use crate::webhook::signature::DEFAULT_MAX_AGE;
use crate::webhook::{secret_from_env, WebhookError};

/// `runproof webhook listen --addr ADDR --secret-env NAME [--artifacts DIR] [--max-age 300s]`.
#[derive(Debug, Clone)]
pub struct ListenArgs {
    /// `127.0.0.1:PORT`.
    pub addr: SocketAddr,
    pub secret_env: String,
    /// The artifacts directory (the CLI's default: `artifacts`).
    pub artifacts: PathBuf,
    pub max_age: Duration,
    pub max_body: usize,
    /// Operator and seal signer.
    pub provenance: super::Provenance,
}

impl ListenArgs {
    /// Arguments with the default window, body limit and `artifacts` directory.
    pub fn new(addr: SocketAddr, secret_env: impl Into<String>) -> Self {
        ListenArgs {
            addr,
            secret_env: secret_env.into(),
            artifacts: PathBuf::from("artifacts"),
            max_age: DEFAULT_MAX_AGE,
            max_body: DEFAULT_MAX_BODY,
            provenance: super::Provenance::default(),
        }
    }
}

/// What a listen session recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenSummary {
    /// The sealed bundle's folder.
    pub bundle: PathBuf,
    pub accepted: u32,
    pub rejected: u32,
}

/// Runs the receiver until `shutdown` resolves, recording every delivery into
/// a `listen` bundle and passing one line per delivery (and a first line with
/// the address and bundle) to `print`. Returns once the bundle is sealed.
pub async fn listen_command(
    args: &ListenArgs,
    lookup: &(dyn Fn(&str) -> Option<String> + Sync),
    shutdown: impl Future<Output = ()>,
    mut print: impl FnMut(&str) + Send,
) -> Result<ListenSummary, WebhookError> {
    let secret = secret_from_env(&args.secret_env, lookup)?;
    let mut config = ListenerConfig::new(secret.as_bytes());
    config.max_age = args.max_age;
    config.max_body = args.max_body;
    let mut listener =
        Listener::bind(args.addr, config)
            .await
            .map_err(|source| WebhookError::Bind {
                addr: args.addr.to_string(),
                source,
            })?;
    let redactor = Arc::new(Redactor::new(&[(args.secret_env.clone(), secret)]));
    crate::evidence::redact::set_log_redactor(redactor.clone());
    let mut header = listen_header(args, listener.local_addr(), redactor.classes());
    args.provenance.stamp(&mut header);
    let mut writer =
        BundleWriter::create(&args.artifacts, header, redactor, SyncPolicy::EveryRecord)
            .map_err(WebhookError::Evidence)?;
    args.provenance.arm(&mut writer);
    let blobs = writer.blobs();
    let started = std::time::Instant::now();
    print(&format!(
        "listening on http://{} (secret from ${}, window {}, body limit {} bytes); recording to {}",
        listener.local_addr(),
        args.secret_env,
        crate::core::duration::format_duration(args.max_age),
        args.max_body,
        writer.dir().display(),
    ));

    let mut counts = (0u32, 0u32);
    let mut record = |delivery: Delivery, writer: &mut BundleWriter| -> Result<(), WebhookError> {
        let stored = delivery
            .store_body(blobs.as_ref())
            .map_err(WebhookError::Evidence)?;
        let (_, event) = writer
            .record(delivery.to_event(stored))
            .map_err(WebhookError::Evidence)?;
        if delivery.accepted {
            counts.0 += 1;
        } else {
            counts.1 += 1;
        }
        if let Some(line) = report::terminal::delivery_line(&event) {
            print(&line);
        }
        Ok(())
    };
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            next = listener.next_delivery() => match next {
                Some(delivery) => record(delivery, &mut writer)?,
                None => break,
            },
        }
    }
    listener.stop().await;
    while let Some(delivery) = listener.try_next_delivery() {
        record(delivery, &mut writer)?;
    }
    let (accepted, rejected) = counts;
    writer
        .append(&Event::RunEnd {
            // Rejections are the receiver doing its job, not a failed run.
            verdict: RunVerdict::Pass,
            counts: BTreeMap::from([
                ("accepted".to_string(), accepted),
                ("rejected".to_string(), rejected),
            ]),
            duration_ms: started.elapsed().as_secs_f64() * 1000.0,
            reason: None,
        })
        .map_err(WebhookError::Evidence)?;
    let bundle = writer.seal().map_err(WebhookError::Evidence)?;
    Ok(ListenSummary {
        bundle,
        accepted,
        rejected,
    })
}

/// The header of a `listen` bundle. There is no input file: `source` names the
/// listener and hashes its configuration line.
fn listen_header(args: &ListenArgs, bound: SocketAddr, redaction: Vec<String>) -> Header {
    let config_line = format!(
        "webhook listen addr={bound} max_age={}s max_body={}",
        args.max_age.as_secs(),
        args.max_body
    );
    let source = SourceRef {
        name: "webhook-listen".to_string(),
        path: bound.to_string(),
        sha256: hex::encode(Sha256::digest(config_line.as_bytes())),
        copy: None,
    };
    Header::new(
        BundleKind::Listen,
        source,
        vec![args.secret_env.clone()],
        redaction,
    )
}
