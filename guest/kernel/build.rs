//! Lets the linker find `linker.ld` (passed as `-Tlinker.ld` in
//! `.cargo/config.toml`) wherever cargo runs it from, and relinks when it
//! changes.

fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    println!("cargo:rustc-link-search=native={dir}");
    println!("cargo:rerun-if-changed=linker.ld");
    println!("cargo:rerun-if-changed=build.rs");
}
