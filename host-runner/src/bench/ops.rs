//! The guest's cost per kind of operation, measured one round trip at a
//! time over the fuzzer's own mix.

use std::fmt::Write as _;
use std::time::Duration;

use tokio::time::Instant;

use super::report::median;
use crate::error::Result;
use crate::session::{Vm, VmConfig};

/// The guest's cost per kind of operation: `ops` generated operations
/// (the fuzzer's default mix, seed `seed`) sent one per round trip to one
/// guest, the round trip timed. Answers (median and total per kind) show
/// which kinds bound the guest's rate.
pub async fn op_costs(config: &VmConfig, ops: usize, seed: u64) -> Result<String> {
    use std::collections::BTreeMap;
    let mut generator = super::mix::generator(config, ops, seed);
    let mut vm = Vm::boot(config).await?;
    let hello = vm.hello().await?;
    let mut per: BTreeMap<&'static str, Vec<Duration>> = BTreeMap::new();
    let mut last = Some(protocol::Response::Hello(Box::new(hello)));
    for _ in 0..ops {
        let op = generator.next_op(last.as_ref());
        if matches!(op, trace::Op::Panic { .. }) {
            last = None;
            continue;
        }
        let t = Instant::now();
        let answer = vm.call(op.to_request()).await?;
        per.entry(op.kind().name()).or_default().push(t.elapsed());
        last = Some(answer);
    }
    vm.shutdown().await?;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:<14} {:>6} {:>12} {:>12} {:>12}",
        "op", "count", "median µs", "max ms", "total ms"
    );
    let mut rows: Vec<_> = per.into_iter().collect();
    rows.sort_by_key(|(_, v)| std::cmp::Reverse(v.iter().sum::<Duration>()));
    for (name, v) in rows {
        let total: Duration = v.iter().sum();
        let max = v.iter().max().copied().unwrap_or_default();
        let n = v.len();
        let _ = writeln!(
            s,
            "{:<14} {:>6} {:>12.1} {:>12.2} {:>12.1}",
            name,
            n,
            median(&v.iter().map(|d| d.as_secs_f64() * 1e6).collect::<Vec<_>>()).unwrap_or(0.0),
            max.as_secs_f64() * 1e3,
            total.as_secs_f64() * 1e3
        );
    }
    Ok(s)
}
