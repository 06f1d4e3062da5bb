//! Symbolizing against the kernel the build script built (skipped, and
//! said so, when it did not build one).

use object::{Object, ObjectSymbol};

use super::*;

/// The built kernel's bytes, or `None` (said on stderr) without one.
fn kernel() -> Option<(PathBuf, Vec<u8>)> {
    let Some(path) = crate::guest_image::built_kernel().filter(|p| p.is_file()) else {
        eprintln!("skipped: no built guest kernel (VMMFUZZ_SKIP_GUEST_BUILD?)");
        return None;
    };
    let bytes = std::fs::read(path).expect("the kernel is readable");
    Some((path.to_owned(), bytes))
}

/// The address and size of the function whose demangled name is `name`.
fn symbol(elf: &object::File, name: &str) -> (u64, u64) {
    elf.symbols()
        .find(|s| s.name().is_ok_and(|n| demangle(n) == name))
        .map(|s| (s.address(), s.size()))
        .unwrap_or_else(|| panic!("{name} is in the kernel's symbol table"))
}

#[test]
fn addresses_in_a_function_name_it_and_nothing_names_unknown() {
    let Some((path, bytes)) = kernel() else {
        return;
    };
    let elf = object::File::parse(&*bytes).unwrap();
    let mut symbols = Symbolizer::load(&path).unwrap();
    let (kmain, size) = symbol(&elf, "kmain");
    assert!(size > 1);
    assert_eq!(symbols.function(kmain), "kmain");
    assert_eq!(symbols.function(kmain + size - 1), "kmain");
    // Inlined code counts as the function it was inlined into.
    let name = "vmm_core::dispatch::handle_one";
    let (handle, size) = symbol(&elf, name);
    for pc in (handle..handle + size).step_by(7) {
        assert_eq!(symbols.function(pc), name, "{pc:#x}");
    }
    assert_eq!(symbols.function(0x10), UNKNOWN);
}

#[test]
fn the_assembly_is_named_by_its_labels() {
    let Some((path, bytes)) = kernel() else {
        return;
    };
    let elf = object::File::parse(&*bytes).unwrap();
    let mut symbols = Symbolizer::load(&path).unwrap();
    // The boot code (identity-mapped, in `.boot`) and an interrupt stub:
    // labels without DWARF, type or size.
    for label in ["pvh_start64", "isr_stub_14"] {
        let (at, _) = symbol(&elf, label);
        assert_eq!(symbols.function(at), label);
        assert_eq!(symbols.function(at + 1), label);
    }
}

#[test]
fn a_symbol_with_a_size_ends_there() {
    let table = vec![
        (0x10, Some(0x18), "a".to_owned()),
        (0x20, None, "b".to_owned()),
    ];
    assert_eq!(nearest_symbol(&table, 0x0f), None);
    assert_eq!(nearest_symbol(&table, 0x10), Some("a"));
    assert_eq!(nearest_symbol(&table, 0x17), Some("a"));
    assert_eq!(nearest_symbol(&table, 0x18), None);
    assert_eq!(nearest_symbol(&table, 0x20), Some("b"));
    assert_eq!(nearest_symbol(&table, 0x99), Some("b"));
}

#[test]
fn return_addresses_are_looked_up_in_their_call() {
    let Some((path, bytes)) = kernel() else {
        return;
    };
    let elf = object::File::parse(&*bytes).unwrap();
    let mut symbols = Symbolizer::load(&path).unwrap();
    // Two functions back to back: a call that ends the first returns to
    // the second's first byte, which is the first's return address.
    let mut functions: Vec<(u64, u64)> = elf
        .symbols()
        .filter(|s| s.kind() == object::SymbolKind::Text && s.size() > 0)
        .map(|s| (s.address(), s.size()))
        .collect();
    functions.sort_unstable();
    let (first, second) = functions
        .windows(2)
        .map(|w| (w[0], w[1]))
        .find(|((a, size), (b, _))| a + size == *b)
        .expect("two functions back to back");
    let first_name = symbols.function(first.0).to_owned();
    let second_name = symbols.function(second.0).to_owned();
    assert_ne!(first_name, second_name);
    let names = symbols.stack(&[second.0, second.0]);
    assert_eq!(names, [second_name, first_name]);
}

#[test]
fn a_missing_elf_is_said_with_its_path() {
    let err = Symbolizer::load(Path::new("/nonexistent/kernel")).unwrap_err();
    assert!(err.to_string().contains("/nonexistent/kernel"), "{err}");
}
