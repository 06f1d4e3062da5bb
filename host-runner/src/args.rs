//! The library's side of the command line: the argument groups library
//! code runs with ([`fuzz::FuzzArgs`]), and the parsers of values several
//! commands take (durations, seeds). The binary's `cli.rs` puts them
//! together with the rest of the commands.

use std::time::Duration;

pub mod fuzz;

/// The time minimization gets unless told otherwise, in `minimize` and for
/// each new failure of a `fuzz` campaign alike: the fuzzer's own finds on
/// injected-bug guests (thousands of operations, a failure that needs the
/// allocator drained) reach their fixpoint of 5–6 operations in 3–4
/// minutes on a loaded 2-core machine under TCG, and are still near 100
/// operations after two.
pub const MINIMIZE_BUDGET: &str = "5m";

/// Parses a duration: a number and a unit (`90s`, `10m`, `1h`, `500ms`;
/// units may be combined: `1m30s`, `1h 5m`), as `humantime` reads them (it
/// also knows `min`, `sec`, `d`, `w`…); a bare number is seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let s = text.trim();
    if let Ok(secs) = s.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    humantime::parse_duration(s)
        .map_err(|e| format!("expected a duration like 90s, 10m, 1h or 1m30s, got {text:?}: {e}"))
}

/// Parses a seed: decimal, or hex after `0x`.
pub fn parse_seed(s: &str) -> Result<u64, String> {
    let r = match s.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => s.parse(),
    };
    r.map_err(|e| format!("expected a seed (decimal or 0x hex), got {s:?}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("5min"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration(" 1h 5m "), Ok(Duration::from_secs(3900)));
        assert_eq!(parse_duration("1d"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse_duration("1.5m"), Ok(Duration::from_secs(90)));
        for bad in ["", "m", "10x", "1.5", "-3s", "3 parsecs"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn seeds() {
        assert_eq!(parse_seed("42"), Ok(42));
        assert_eq!(parse_seed("0x2a"), Ok(42));
        assert!(parse_seed("0xg").is_err());
        assert!(parse_seed("-1").is_err());
    }
}
