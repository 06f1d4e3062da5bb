//! The cached accelerator verdict: one JSON file, one entry per machine
//! kind.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use super::{Accel, Verdict};

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
    let text = std::fs::read_to_string(file).ok()?;
    let all: Value = serde_json::from_str(&text).ok()?;
    let entry = all.get(key)?;
    let accel = Accel::from_name(entry.get("accel")?.as_str()?)?;
    let why = entry.get("reason")?.as_str()?;
    Some(Verdict {
        accel,
        reason: format!("cached verdict ({}): {why}", file.display()),
    })
}

pub(super) fn write_cache(file: &Path, key: &str, verdict: &Verdict) -> std::io::Result<()> {
    let mut all: Value = std::fs::read_to_string(file)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .filter(Value::is_object)
        .unwrap_or_else(|| json!({}));
    let when = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    all[key] = json!({ "accel": verdict.accel.qemu_name(), "reason": verdict.reason, "measured_at": when });
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = file.with_extension("json.tmp");
    std::fs::write(&tmp, serde_json::to_string_pretty(&all)?)?;
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
        };
        write_cache(&file, "k", &v).unwrap();
        write_cache(
            &file,
            "other",
            &Verdict {
                accel: Accel::Tcg,
                reason: "x".into(),
            },
        )
        .unwrap();
        let back = read_cache(&file, "k").unwrap();
        assert_eq!(back.accel, Accel::Kvm);
        assert!(back.reason.contains("because") && back.reason.contains("cached"));
        assert_eq!(read_cache(&file, "other").unwrap().accel, Accel::Tcg);
        assert_eq!(read_cache(&file, "missing"), None);
    }

    #[test]
    fn cache_key_names_qemu_and_kernel() {
        let k = cache_key("QEMU emulator version 7.2.22");
        assert!(k.starts_with("QEMU emulator version 7.2.22 | linux "));
    }
}
