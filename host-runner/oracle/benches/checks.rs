//! Full and incremental memory checks over synthetic images at several RAM
//! sizes, printed (no assertion): `cargo bench -p oracle --bench checks`.

fn main() {
    let rows = oracle::bench::check_costs(&oracle::bench::Plan::default());
    print!("{}", oracle::bench::table(&rows));
}
