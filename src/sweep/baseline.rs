//! Latency baselines: `--save-baseline FILE` stores each check's figures;
//! `--baseline FILE` flags checks whose p95 grew beyond a factor of it.

use std::collections::BTreeMap;
use std::io;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::stats::LatencyStats;

/// A saved baseline file.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Baseline {
    pub version: u32,
    pub created_at: String,
    pub checks: BTreeMap<String, LatencyStats>,
}

/// A check slower than its baseline.
#[derive(Debug, Clone, PartialEq)]
pub struct Regression {
    pub baseline_p95_ms: f64,
    pub p95_ms: f64,
    pub factor: f64,
}

impl Regression {
    /// "p95 84.0ms is 3.2× the baseline 26.1ms (limit 1.5×)"
    pub fn describe(&self, limit: f64) -> String {
        format!(
            "p95 {:.1}ms is {:.1}× the baseline {:.1}ms (limit {limit}×)",
            self.p95_ms, self.factor, self.baseline_p95_ms
        )
    }
}

/// Below this growth in milliseconds a slower p95 is noise, not a regression
/// (a 0.2 ms check taking 0.5 ms is 2.5× but means nothing).
const NOISE_FLOOR_MS: f64 = 5.0;

impl Baseline {
    /// Reads a baseline file.
    pub fn load(path: &Path) -> io::Result<Baseline> {
        let text = std::fs::read_to_string(path)?;
        serde_json::from_str(&text).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: {e}", path.display()),
            )
        })
    }

    /// Writes the baseline atomically (temp file, fsync, rename).
    pub fn save(&self, path: &Path) -> io::Result<()> {
        let text = serde_json::to_string_pretty(self).map_err(io::Error::other)?;
        write_atomically(path, text.as_bytes())
    }

    /// Whether `id`'s p95 regressed beyond `factor` × its baseline p95.
    pub fn compare(&self, id: &str, current: &LatencyStats, factor: f64) -> Option<Regression> {
        let base = self.checks.get(id)?;
        if base.p95_ms <= 0.0 {
            return None;
        }
        let growth = current.p95_ms / base.p95_ms;
        (growth > factor && current.p95_ms - base.p95_ms > NOISE_FLOOR_MS).then_some(Regression {
            baseline_p95_ms: base.p95_ms,
            p95_ms: current.p95_ms,
            factor: growth,
        })
    }
}

/// Replaces `path` with `bytes` so that readers see the old or the new file,
/// never a partial one (node_exporter may read it at any moment).
pub fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::io::Write as _;
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let written = std::fs::File::create(&tmp).and_then(|mut file| {
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&tmp, path)
    });
    if let Err(err) = written {
        // Do not leave a stray temp file in a textfile collector's folder.
        let _ = std::fs::remove_file(&tmp);
        return Err(err);
    }
    if let Ok(dir) = std::fs::File::open(dir) {
        let _ = dir.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(p95: f64) -> LatencyStats {
        LatencyStats {
            samples: 5,
            min_ms: p95 / 2.0,
            p50_ms: p95 / 1.5,
            p95_ms: p95,
            p99_ms: p95,
            max_ms: p95,
        }
    }

    #[test]
    fn flags_growth_beyond_factor_and_noise() {
        let baseline = Baseline {
            version: 1,
            created_at: String::new(),
            checks: BTreeMap::from([
                ("api".to_string(), stats(20.0)),
                ("tiny".to_string(), stats(0.2)),
            ]),
        };
        let regression = baseline.compare("api", &stats(50.0), 1.5).unwrap();
        assert_eq!(regression.factor, 2.5);
        assert!(baseline.compare("api", &stats(29.0), 1.5).is_none());
        assert!(
            baseline.compare("tiny", &stats(1.0), 1.5).is_none(),
            "below the noise floor"
        );
        assert!(baseline.compare("unknown", &stats(100.0), 1.5).is_none());
    }

    #[test]
    fn saves_and_loads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("baseline.json");
        let baseline = Baseline {
            version: 1,
            created_at: "2026-11-25T00:00:00Z".into(),
            checks: BTreeMap::from([("api".to_string(), stats(20.0))]),
        };
        baseline.save(&path).unwrap();
        let loaded = Baseline::load(&path).unwrap();
        assert_eq!(loaded.checks["api"], stats(20.0));
    }
}
