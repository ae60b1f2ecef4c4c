//! The files of a bundle: blobs against their references and names, and the
//! seal against the journal and against what is actually on disk.

use super::*;

/// The blobs the journal references, collected one record at a time: the
/// first (line, seq) and size of each, by hex digest.
#[derive(Default)]
pub(super) struct BlobRefs {
    referenced: BTreeMap<String, (u64, u64, Option<u64>)>,
}

impl BlobRefs {
    /// Notes the blobs `record` references; a malformed digest is a problem.
    pub(super) fn record(&mut self, v: &mut Verifier, line: u64, record: &Record) {
        let refs: Vec<(String, Option<u64>)> = match &record.event {
            Event::AttemptEnd { blobs, .. }
            | Event::StepPass { blobs, .. }
            | Event::Probe { blobs, .. }
            | Event::Delivery { blobs, .. } => blobs
                .iter()
                .map(|b| (b.digest.clone(), Some(b.size)))
                .collect(),
            Event::Escalation(e) => e
                .evidence
                .iter()
                .filter_map(|d| {
                    // Digests (`sha256:<hex>`) or paths (`blobs/sha256/<hex>`).
                    if d.starts_with("sha256:") {
                        Some(d.clone())
                    } else {
                        d.strip_prefix("blobs/sha256/")
                            .map(|hex| format!("sha256:{hex}"))
                    }
                })
                .map(|d| (d, None))
                .chain(
                    e.collected
                        .iter()
                        .flat_map(|c| &c.blobs)
                        .map(|b| (b.digest.clone(), Some(b.size))),
                )
                .collect(),
            _ => Vec::new(),
        };
        for (digest, size) in refs {
            let Some(hex) = digest.strip_prefix("sha256:").filter(|h| is_sha256_hex(h)) else {
                v.journal_problem(
                    BLOBS,
                    line,
                    Some(record.seq),
                    format!("blob digest {digest:?} is not sha256:<hex>"),
                );
                continue;
            };
            // Most records reference a blob already seen: look up first.
            let Some(entry) = self.referenced.get(hex) else {
                self.referenced
                    .insert(hex.to_string(), (line, record.seq, size));
                continue;
            };
            if let (Some(a), Some(b)) = (entry.2, size) {
                if a != b {
                    v.journal_problem(
                        BLOBS,
                        line,
                        Some(record.seq),
                        format!("blob {hex} referenced with two sizes"),
                    );
                }
            }
        }
    }
}

impl Verifier {
    /// Every referenced blob exists and matches; every file under `blobs/`
    /// is named by its digest.
    pub(super) fn check_blobs(&mut self, refs: BlobRefs, files: &[String], sealed: bool) {
        let referenced = refs.referenced;
        let present: BTreeSet<&str> = files
            .iter()
            .filter_map(|f| f.strip_prefix(BLOB_DIR).and_then(|r| r.strip_prefix('/')))
            .collect();
        let mut checked = 0usize;
        for (hex, (line, seq, size)) in &referenced {
            let name = format!("{BLOB_DIR}/{hex}");
            if !present.contains(hex.as_str()) {
                self.journal_problem(
                    BLOBS,
                    *line,
                    Some(*seq),
                    format!("references {name}, which does not exist"),
                );
                continue;
            }
            checked += 1;
            match sha256_file(&self.dir.join(&name)) {
                Err(e) => self.problem(BLOBS, &name, None, format!("cannot read: {e}")),
                Ok((actual, actual_size)) => {
                    if actual != *hex {
                        self.problem(BLOBS, &name, None, format!("content does not match its name (referenced at line {line}, seq {seq})"));
                    }
                    if let Some(size) = size {
                        if *size != actual_size {
                            self.problem(
                                BLOBS,
                                &name,
                                None,
                                format!(
                                    "size {actual_size}, the record at line {line} says {size}"
                                ),
                            );
                        }
                    }
                }
            }
        }
        // Files under blobs/ that nobody references: named by digest?
        for file in files.iter().filter(|f| f.starts_with("blobs/")) {
            let leaf = file.rsplit('/').next().unwrap_or("");
            let hex = file
                .strip_prefix(BLOB_DIR)
                .and_then(|r| r.strip_prefix('/'))
                .unwrap_or("");
            if referenced.contains_key(hex) {
                continue;
            }
            if leaf.starts_with(TEMP_PREFIX) && !sealed {
                continue;
            }
            if !is_sha256_hex(hex) {
                self.problem(BLOBS, file, None, "not a blob name (blobs/sha256/<hex>)");
                continue;
            }
            match sha256_file(&self.dir.join(file)) {
                Ok((actual, _)) if actual == hex => {
                    self.warnings
                        .push(format!("{file}: stored but not referenced by any record"));
                }
                Ok(_) => self.problem(BLOBS, file, None, "content does not match its name"),
                Err(e) => self.problem(BLOBS, file, None, format!("cannot read: {e}")),
            }
        }
        self.details.insert(
            BLOBS,
            format!(
                "{} referenced, {checked} present and matching",
                referenced.len()
            ),
        );
    }

    pub(super) fn check_seal(
        &mut self,
        seal: &Seal,
        files: &[String],
        header: Option<&Header>,
        records: u64,
        head: Option<&str>,
        run_end: Option<RunVerdict>,
    ) {
        let p = &seal.predicate;
        if seal.statement_type != STATEMENT_TYPE {
            self.problem(
                SEAL,
                SEAL_FILE,
                None,
                format!("_type is not {STATEMENT_TYPE}"),
            );
        }
        if seal.predicate_type != SEAL_PREDICATE_TYPE {
            self.problem(
                SEAL,
                SEAL_FILE,
                None,
                format!("predicateType is not {SEAL_PREDICATE_TYPE}"),
            );
        }
        if p.records != records {
            self.problem(
                SEAL,
                SEAL_FILE,
                None,
                format!("seal says {} records, the journal has {records}", p.records),
            );
        }
        if head.is_some_and(|h| h != p.head) {
            self.problem(
                SEAL,
                SEAL_FILE,
                None,
                "seal head does not match the journal's last line",
            );
        }
        if let Some(h) = header {
            if p.run_id != h.run_id {
                self.problem(
                    SEAL,
                    SEAL_FILE,
                    None,
                    "seal run_id differs from the header's",
                );
            }
            if p.source.sha256 != h.source.sha256 {
                self.problem(
                    SEAL,
                    SEAL_FILE,
                    None,
                    "seal source sha256 differs from the header's",
                );
            }
            if p.source.name != h.source.name || p.source.path != h.source.path {
                self.problem(
                    SEAL,
                    SEAL_FILE,
                    None,
                    "seal source differs from the header's",
                );
            }
            if p.kind != h.kind {
                self.problem(SEAL, SEAL_FILE, None, "seal kind differs from the header's");
            }
        }
        if p.verdict != run_end {
            self.problem(
                SEAL,
                SEAL_FILE,
                None,
                "seal verdict differs from the run.end record",
            );
        }
        self.details.insert(
            SEAL,
            format!("{} records, head {}", p.records, short(&p.head)),
        );

        let on_disk: BTreeSet<&str> = files.iter().map(String::as_str).collect();
        let mut listed: BTreeSet<&str> = BTreeSet::new();
        for subject in &seal.subject {
            let name = subject.name.as_str();
            if !listed.insert(name) {
                self.problem(SUBJECTS, SEAL_FILE, None, format!("{name} listed twice"));
                continue;
            }
            if name == SEAL_FILE
                || name == SIGNATURE_FILE
                || name
                    .split('/')
                    .any(|c| c.is_empty() || c == "." || c == "..")
                || name.starts_with('/')
            {
                self.problem(
                    SUBJECTS,
                    SEAL_FILE,
                    None,
                    format!("subject {name:?} is not a bundle file name"),
                );
                continue;
            }
            if !on_disk.contains(name) {
                self.problem(SUBJECTS, name, None, "listed in the seal but missing");
                continue;
            }
            let path = self.dir.join(name);
            if !fs::symlink_metadata(&path)
                .map(|m| m.is_file())
                .unwrap_or(false)
            {
                self.problem(SUBJECTS, name, None, "not a regular file");
                continue;
            }
            match (sha256_file(&path), subject.sha256()) {
                (Ok((actual, _)), Some(expected)) if actual == expected => {}
                (Ok(_), Some(_)) => {
                    self.problem(SUBJECTS, name, None, "SHA-256 differs from the seal")
                }
                (Ok(_), None) => self.problem(
                    SUBJECTS,
                    SEAL_FILE,
                    None,
                    format!("{name} listed without a sha256 digest"),
                ),
                (Err(e), _) => self.problem(SUBJECTS, name, None, format!("cannot read: {e}")),
            }
        }
        self.details.insert(
            SUBJECTS,
            format!(
                "{} files listed, each present with its SHA-256",
                seal.subject.len()
            ),
        );
        for file in files {
            if file != SEAL_FILE && file != SIGNATURE_FILE && !listed.contains(file.as_str()) {
                self.problem(UNLISTED, file, None, "present but not listed in the seal");
            }
        }
        self.details
            .insert(UNLISTED, "no file outside the seal".to_string());
    }
}

fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

pub(super) fn short(digest: &str) -> String {
    digest.chars().take(7 + 12).collect::<String>() + "…"
}
