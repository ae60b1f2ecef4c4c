//! The checks that answer QA's own questions, each against something QA
//! brings from outside the bundle: who signed the seal (`--allowed-signers`,
//! `--identity`), where the chain ends (`--expect-head`), which runbook ran
//! (`--runbook`); and the seal's claims about the run (counts, times)
//! against the journal.

use ssh_key::{HashAlg, PublicKey, SshSig};

use super::*;

impl Verifier {
    /// `seal.json.sig`: verified over the exact bytes of `seal.json`; with
    /// `--allowed-signers`, required and matched against QA's keys only —
    /// never against a key the bundle itself names.
    pub(super) fn check_signature(
        &mut self,
        sealed: bool,
        header: Option<&Header>,
        options: &VerifyOptions,
    ) -> Option<SignerInfo> {
        // The header (chained and sealed) says whether the run signed.
        let claimed = header.and_then(|h| h.signing_key.as_deref());
        let sig_path = self.dir.join(SIGNATURE_FILE);
        let signed = sig_path.exists();
        let required = options.allowed_signers.is_some();
        if !sealed {
            if signed {
                self.problem(
                    SIGNATURE,
                    SEAL_FILE,
                    None,
                    "seal.json.sig is present but seal.json is not: the seal was deleted",
                );
            } else if required {
                self.problem(
                    SIGNATURE,
                    SEAL_FILE,
                    None,
                    "missing: --allowed-signers needs a sealed, signed bundle",
                );
            } else {
                self.skipped.insert(SIGNATURE, "no seal".to_string());
            }
            return None;
        }
        if !signed {
            if let Some(key) = claimed {
                self.problem(
                    SIGNATURE,
                    SIGNATURE_FILE,
                    None,
                    format!("missing: the header says the seal was signed by {key}"),
                );
            } else if required {
                self.problem(
                    SIGNATURE,
                    SIGNATURE_FILE,
                    None,
                    "unsigned: no seal.json.sig, and --allowed-signers requires a signature",
                );
            } else {
                self.skipped.insert(
                    SIGNATURE,
                    "unsigned (require a signature with --allowed-signers)".to_string(),
                );
            }
            return None;
        }
        let (seal_bytes, sig_text) = match (
            fs::read(self.dir.join(SEAL_FILE)),
            fs::read_to_string(&sig_path),
        ) {
            (Ok(seal), Ok(sig)) => (seal, sig),
            (Err(e), _) | (_, Err(e)) => {
                self.problem(SIGNATURE, SIGNATURE_FILE, None, format!("cannot read: {e}"));
                return None;
            }
        };
        let sig = match SshSig::from_pem(sig_text.trim()) {
            Ok(sig) => sig,
            Err(e) => {
                self.problem(
                    SIGNATURE,
                    SIGNATURE_FILE,
                    None,
                    format!("not an SSH signature: {e}"),
                );
                return None;
            }
        };
        if sig.namespace() != SIGNATURE_NAMESPACE {
            self.problem(
                SIGNATURE,
                SIGNATURE_FILE,
                None,
                format!(
                    "made for namespace {:?}, not {SIGNATURE_NAMESPACE:?}",
                    sig.namespace()
                ),
            );
            return None;
        }
        let key = PublicKey::from(sig.public_key().clone());
        let fingerprint = key.fingerprint(HashAlg::Sha256).to_string();
        if let Some(claimed) = claimed.filter(|c| *c != fingerprint) {
            self.problem(
                SIGNATURE,
                SIGNATURE_FILE,
                None,
                format!("signed by {fingerprint}, but the header names {claimed}"),
            );
            return None;
        }
        if let Err(e) = key.verify(SIGNATURE_NAMESPACE, &seal_bytes, &sig) {
            self.problem(
                SIGNATURE,
                SIGNATURE_FILE,
                None,
                format!("does not verify over seal.json ({e}): the seal was changed after signing"),
            );
            return None;
        }
        let Some(allowed) = &options.allowed_signers else {
            self.details.insert(
                SIGNATURE,
                format!("valid SSHSIG by {fingerprint}, a key not checked against allowed signers (pass --allowed-signers)"),
            );
            return Some(SignerInfo {
                principals: Vec::new(),
                fingerprint,
                trusted: false,
            });
        };
        let now = jiff::Timestamp::now();
        let lines: Vec<_> = allowed
            .signers
            .iter()
            .filter(|s| s.key.key_data() == key.key_data())
            .collect();
        let usable: Vec<_> = lines
            .iter()
            .filter(|s| s.allows(SIGNATURE_NAMESPACE, now))
            .filter(|s| options.identity.as_deref().is_none_or(|id| s.names(id)))
            .collect();
        if usable.is_empty() {
            let why = match (&options.identity, lines.is_empty()) {
                (_, true) => format!("signed by {fingerprint}, a key not in --allowed-signers"),
                (Some(id), false) => format!(
                    "signed by {fingerprint}, which --allowed-signers does not list for identity {id:?} (or not for namespace {SIGNATURE_NAMESPACE} now)"
                ),
                (None, false) => format!(
                    "signed by {fingerprint}, which --allowed-signers does not allow for namespace {SIGNATURE_NAMESPACE} now"
                ),
            };
            self.problem(SIGNATURE, SIGNATURE_FILE, None, why);
            return None;
        }
        let principals: Vec<String> = match &options.identity {
            Some(id) => vec![id.clone()],
            None => usable.iter().map(|s| s.principals.clone()).collect(),
        };
        self.details.insert(
            SIGNATURE,
            format!(
                "signed by {} ({fingerprint}), an allowed signer",
                principals.join(", ")
            ),
        );
        Some(SignerInfo {
            principals,
            fingerprint,
            trusted: true,
        })
    }

    /// `--expect-head`: the chain ends where QA was told it ends.
    pub(super) fn check_head(&mut self, sealed: bool, head: Option<&str>, options: &VerifyOptions) {
        let Some(expected) = &options.expect_head else {
            self.skipped.insert(HEAD, "no --expect-head".to_string());
            return;
        };
        let expected = normalize_head(expected);
        if !sealed {
            self.problem(
                HEAD,
                SEAL_FILE,
                None,
                "missing: --expect-head was given, so the bundle must be sealed",
            );
        }
        match head {
            Some(actual) if actual == expected => {
                self.details.insert(
                    HEAD,
                    format!("the chain ends at the expected {}", short(actual)),
                );
            }
            Some(actual) => self.problem(
                HEAD,
                JOURNAL_FILE,
                None,
                format!("the chain ends at {actual}, not at the expected {expected}"),
            ),
            None => self.problem(HEAD, JOURNAL_FILE, None, "no chain to compare"),
        }
    }

    /// The header's runbook digests: the copy in the bundle matches its
    /// recorded digest; `--runbook FILE` matches the file as written.
    pub(super) fn check_runbook(&mut self, header: Option<&Header>, options: &VerifyOptions) {
        let Some(header) = header else {
            self.skipped.insert(RUNBOOK, "no header".to_string());
            return;
        };
        let source = &header.source;
        let mut detail = Vec::new();
        if let Some(copy) = &source.copy {
            match sha256_file(&self.dir.join(&copy.path)) {
                Ok((actual, _)) if actual == copy.sha256 => detail.push(format!(
                    "{} is the redacted copy (sha256 {}…)",
                    copy.path,
                    &copy.sha256[..12]
                )),
                Ok(_) => self.problem(
                    RUNBOOK,
                    &copy.path,
                    None,
                    "differs from the digest the header records for the copy",
                ),
                Err(e) => self.problem(RUNBOOK, &copy.path, None, format!("cannot read: {e}")),
            }
        }
        match &options.runbook {
            None => {
                if detail.is_empty() {
                    self.skipped.insert(RUNBOOK, "no --runbook".to_string());
                    return;
                }
                detail.push(format!(
                    "the file as written had sha256 {}… (compare with --runbook)",
                    short_hex(&source.sha256)
                ));
            }
            Some(_) if header.kind != BundleKind::Run => self.problem(
                RUNBOOK,
                HEADER_FILE,
                None,
                format!(
                    "--runbook applies to run bundles; this is a {} bundle",
                    kind_name(header.kind)
                ),
            ),
            Some(file) if file.sha256 == source.sha256 => detail.push(format!(
                "{} is the runbook as written (sha256 {}…)",
                file.path,
                short_hex(&file.sha256)
            )),
            Some(file) => {
                let copy_matches = source
                    .copy
                    .as_ref()
                    .is_some_and(|c| c.sha256 == file.sha256);
                let message = if copy_matches {
                    format!(
                        "{} is the bundle's redacted copy, not the runbook as written (sha256 {})",
                        file.path, source.sha256
                    )
                } else {
                    format!(
                        "{} (sha256 {}) is not the runbook this bundle ran (sha256 {} as written)",
                        file.path, file.sha256, source.sha256
                    )
                };
                self.problem(RUNBOOK, HEADER_FILE, None, message);
            }
        }
        self.details.insert(RUNBOOK, detail.join("; "));
    }

    /// The seal's statements about the run agree with the journal: counts
    /// with `run.end`, `started_at` with the header, `finished_at` not before
    /// the last record.
    pub(super) fn check_seal_claims(
        &mut self,
        seal: &Seal,
        header: Option<&Header>,
        run_end_counts: Option<&BTreeMap<String, u32>>,
        last_t: Option<&str>,
    ) {
        let p = &seal.predicate;
        let empty = BTreeMap::new();
        let journal_counts = run_end_counts.unwrap_or(&empty);
        if &p.counts != journal_counts {
            let show = |c: &BTreeMap<String, u32>| {
                if c.is_empty() {
                    "none".to_string()
                } else {
                    c.iter()
                        .map(|(k, v)| format!("{v} {k}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            };
            self.problem(
                SEAL,
                SEAL_FILE,
                None,
                format!(
                    "seal counts ({}) differ from run.end's ({})",
                    show(&p.counts),
                    show(journal_counts)
                ),
            );
        }
        if let Some(h) = header {
            if p.started_at != h.started_at {
                self.problem(
                    SEAL,
                    SEAL_FILE,
                    None,
                    format!(
                        "seal started_at {} differs from the header's {}",
                        p.started_at, h.started_at
                    ),
                );
            }
        }
        let parse = |t: &str| t.parse::<jiff::Timestamp>().ok();
        match parse(&p.finished_at) {
            None => self.problem(SEAL, SEAL_FILE, None, "finished_at is not an RFC 3339 time"),
            Some(finished) => {
                if let Some(start) = parse(&p.started_at).filter(|s| finished < *s) {
                    self.problem(
                        SEAL,
                        SEAL_FILE,
                        None,
                        format!("finished_at {finished} is before started_at {start}"),
                    );
                }
                if let Some(last) = last_t.and_then(parse).filter(|l| finished < *l) {
                    self.problem(
                        SEAL,
                        SEAL_FILE,
                        None,
                        format!("finished_at {finished} is before the last record ({last})"),
                    );
                }
            }
        }
    }
}

/// `sha256:<hex>` from `sha256:<HEX>` or a bare hex digest.
fn normalize_head(text: &str) -> String {
    let text = text.trim();
    let hex = text.strip_prefix("sha256:").unwrap_or(text);
    format!("sha256:{}", hex.to_ascii_lowercase())
}

fn short_hex(hex: &str) -> &str {
    hex.get(..12).unwrap_or(hex)
}
