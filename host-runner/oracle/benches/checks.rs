//! Full and incremental memory checks over synthetic images at several RAM
//! sizes, printed (no assertion): `cargo bench -p oracle --bench checks
//! [-- --ram MIB,.. --pages N,.. --runs N]`.

fn main() {
    let mut plan = oracle::bench::Plan::default();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let list = |v: &str| -> Vec<u64> { v.split(',').filter_map(|x| x.parse().ok()).collect() };
    for pair in args.windows(2) {
        match pair[0].as_str() {
            "--ram" => plan.ram_mib = list(&pair[1]),
            "--pages" => plan.mapped = list(&pair[1]),
            "--runs" => plan.runs = pair[1].parse().unwrap_or(plan.runs),
            _ => {}
        }
    }
    let rows = oracle::bench::check_costs(&plan);
    print!("{}", oracle::bench::table(&rows));
}
