//! The cached accelerator verdict: one JSON file, one entry per machine
//! kind, `{"version":1,"verdicts":{"<key>":{"accel":"tcg","reason":"…",
//! "measured_at":<unix seconds>}}}`. A file of another version (or of none:
//! before versions) is taken as empty and replaced on the next write.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{Accel, Verdict};

/// The version of the cache file this build reads and writes.
const CACHE_VERSION: u32 = 1;

#[derive(Debug, Serialize, Deserialize)]
struct CacheFile {
    version: u32,
    verdicts: BTreeMap<String, CachedVerdict>,
}

#[derive(Debug, Serialize, Deserialize)]
struct CachedVerdict {
    accel: Accel,
    reason: String,
    /// When it was measured, in seconds since the Unix epoch.
    measured_at: u64,
    /// The chosen accelerator's probe time in milliseconds (absent in
    /// caches written before it was kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    score_ms: Option<f64>,
}

/// The cache in `file`, when there is one of this version.
fn load(file: &Path) -> Option<CacheFile> {
    let text = std::fs::read_to_string(file).ok()?;
    serde_json::from_str::<CacheFile>(&text)
        .ok()
        .filter(|c| c.version == CACHE_VERSION)
}

/// What the cached verdict depends on.
pub fn cache_key(qemu_version: &str) -> String {
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_default();
    format!("{qemu_version} | linux {} | {cpu}", kernel.trim())
}

/// `$VMMFUZZ_CACHE_DIR`, else `$XDG_CACHE_HOME/vmmfuzz`, else
/// `~/.cache/vmmfuzz`; the file `accel.json` in it.
pub fn cache_file() -> Option<PathBuf> {
    let env = |k| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    let dir = env("VMMFUZZ_CACHE_DIR")
        .or_else(|| env("XDG_CACHE_HOME").map(|d| d.join("vmmfuzz")))
        .or_else(|| env("HOME").map(|d| d.join(".cache/vmmfuzz")))?;
    Some(dir.join("accel.json"))
}

pub(super) fn read_cache(file: &Path, key: &str) -> Option<Verdict> {
    let cached = load(file)?.verdicts.remove(key)?;
    Some(Verdict {
        accel: cached.accel,
        reason: format!("cached verdict ({}): {}", file.display(), cached.reason),
        score: cached
            .score_ms
            .filter(|ms| ms.is_finite() && *ms >= 0.0)
            .map(|ms| std::time::Duration::from_secs_f64(ms / 1e3)),
    })
}

pub(super) fn write_cache(file: &Path, key: &str, verdict: &Verdict) -> std::io::Result<()> {
    let mut cache = load(file).unwrap_or(CacheFile {
        version: CACHE_VERSION,
        verdicts: BTreeMap::new(),
    });
    let measured_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    cache.verdicts.insert(
        key.to_string(),
        CachedVerdict {
            accel: verdict.accel,
            reason: verdict.reason.clone(),
            measured_at,
            score_ms: verdict.score.map(|d| d.as_secs_f64() * 1e3),
        },
    );
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = file.with_extension("json.tmp");
    std::fs::write(&tmp, serde_json::to_string_pretty(&cache)?)?;
    std::fs::rename(tmp, file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("sub/accel.json");
        assert_eq!(read_cache(&file, "k"), None);
        let v = Verdict {
            accel: Accel::Kvm,
            reason: "because".into(),
            score: Some(std::time::Duration::from_millis(1500)),
        };
        write_cache(&file, "k", &v).unwrap();
        write_cache(
            &file,
            "other",
            &Verdict {
                accel: Accel::Tcg,
                reason: "x".into(),
                score: None,
            },
        )
        .unwrap();
        let back = read_cache(&file, "k").unwrap();
        assert_eq!(back.accel, Accel::Kvm);
        assert!(back.reason.contains("because") && back.reason.contains("cached"));
        assert_eq!(
            back.score, v.score,
            "the probe time is kept: timeouts scale with it"
        );
        assert_eq!(read_cache(&file, "other").unwrap().accel, Accel::Tcg);
        assert_eq!(read_cache(&file, "missing"), None);
    }

    #[test]
    fn files_of_another_version_are_taken_as_empty_and_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("accel.json");
        let v = Verdict {
            accel: Accel::Tcg,
            reason: "faster".into(),
            score: None,
        };
        // Before versions, keys were at the top level.
        let old = r#"{"k":{"accel":"kvm","reason":"old","measured_at":1}}"#;
        std::fs::write(&file, old).unwrap();
        assert_eq!(read_cache(&file, "k"), None);
        let newer =
            r#"{"version":2,"verdicts":{"k":{"accel":"kvm","reason":"x","measured_at":1}}}"#;
        std::fs::write(&file, newer).unwrap();
        assert_eq!(read_cache(&file, "k"), None);
        write_cache(&file, "k", &v).unwrap();
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(text.contains("\"version\": 1"), "{text}");
        assert!(text.contains("\"accel\": \"tcg\""), "{text}");
        assert_eq!(read_cache(&file, "k").unwrap().accel, Accel::Tcg);
    }

    #[test]
    fn cache_key_names_qemu_and_kernel() {
        let k = cache_key("QEMU emulator version 7.2.22");
        assert!(k.starts_with("QEMU emulator version 7.2.22 | linux "));
    }
}
