//! From guest addresses to function names, in-process: the kernel ELF's
//! DWARF (addr2line over gimli), its symbol table where DWARF has nothing
//! (the assembly: boot code, interrupt stubs).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The name of an address nothing names.
pub const UNKNOWN: &str = "[unknown]";

/// Why the kernel's symbols cannot be read.
#[derive(Debug, thiserror::Error)]
#[error("cannot read the symbols of {}: {why}", .path.display())]
pub struct SymbolError {
    pub path: PathBuf,
    pub why: String,
}

/// Names the functions of one kernel ELF, remembering every answer.
pub struct Symbolizer {
    loader: addr2line::Loader,
    /// The address ranges of the ELF's executable sections: nothing
    /// outside them is code (DWARF of functions the linker dropped can
    /// claim addresses from 0 up).
    code: Vec<std::ops::Range<u64>>,
    /// The symbols in those sections, by address: (address, end when the
    /// symbol has a size, name).
    table: Vec<(u64, Option<u64>, String)>,
    cache: HashMap<u64, String>,
}

impl std::fmt::Debug for Symbolizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Symbolizer")
            .field("cached", &self.cache.len())
            .finish_non_exhaustive()
    }
}

impl Symbolizer {
    /// Reads the DWARF and symbols of the ELF at `path`.
    pub fn load(path: &Path) -> Result<Symbolizer, SymbolError> {
        let failed = |why: String| SymbolError {
            path: path.to_owned(),
            why,
        };
        let bytes = std::fs::read(path).map_err(|e| failed(e.to_string()))?;
        let elf = object::File::parse(&*bytes).map_err(|e| failed(e.to_string()))?;
        let code = code_ranges(&elf);
        let table = symbol_table(&elf, &code);
        let loader = addr2line::Loader::new(path).map_err(|e| failed(e.to_string()))?;
        Ok(Symbolizer {
            loader,
            code,
            table,
            cache: HashMap::new(),
        })
    }

    /// The function that holds the instruction at `pc`: of an inline
    /// chain the outermost (the function really called), demangled
    /// without hash; [`UNKNOWN`] when nothing names it.
    pub fn function(&mut self, pc: u64) -> &str {
        let (loader, code, table) = (&self.loader, &self.code, &self.table);
        self.cache.entry(pc).or_insert_with(|| {
            if !code.iter().any(|r| r.contains(&pc)) {
                return UNKNOWN.to_owned();
            }
            outermost(loader, pc)
                .or_else(|| nearest_symbol(table, pc).map(demangle))
                .unwrap_or_else(|| UNKNOWN.to_owned())
        })
    }

    /// The functions of a sampled stack (RIP first, then return
    /// addresses), leaf first. A return address is looked up one byte
    /// back, in the call instruction: a call that ends a function (to one
    /// that does not return) would name the next function otherwise.
    pub fn stack(&mut self, frames: &[u64]) -> Vec<String> {
        frames
            .iter()
            .enumerate()
            .map(|(i, &a)| {
                let pc = if i == 0 { a } else { a.wrapping_sub(1) };
                self.function(pc).to_owned()
            })
            .collect()
    }
}

/// The address ranges of the ELF's executable sections.
fn code_ranges(elf: &object::File) -> Vec<std::ops::Range<u64>> {
    use object::{Object, ObjectSection, SectionFlags};
    elf.sections()
        .filter(|s| match s.flags() {
            SectionFlags::Elf { sh_flags } => sh_flags & u64::from(object::elf::SHF_EXECINSTR) != 0,
            _ => false,
        })
        .filter(|s| s.size() > 0)
        .map(|s| s.address()..s.address() + s.size())
        .collect()
}

/// The named symbols in `code`, by address: labels of the assembly
/// (without type or size) too.
fn symbol_table(
    elf: &object::File,
    code: &[std::ops::Range<u64>],
) -> Vec<(u64, Option<u64>, String)> {
    use object::{Object, ObjectSymbol, SymbolKind};
    let mut table: Vec<(u64, Option<u64>, String)> = elf
        .symbols()
        .filter(|s| matches!(s.kind(), SymbolKind::Text | SymbolKind::Unknown))
        .filter(|s| code.iter().any(|r| r.contains(&s.address())))
        .filter_map(|s| {
            let name = s.name().ok().filter(|n| !n.is_empty())?;
            let end = (s.size() > 0).then(|| s.address() + s.size());
            Some((s.address(), end, name.to_owned()))
        })
        .collect();
    table.sort();
    table
}

/// The symbol at or before `pc`, if `pc` is inside it (before its end
/// when it has a size).
fn nearest_symbol(table: &[(u64, Option<u64>, String)], pc: u64) -> Option<&str> {
    let at = table.partition_point(|(a, _, _)| *a <= pc).checked_sub(1)?;
    let (_, end, name) = &table[at];
    match end {
        Some(end) if pc >= *end => None,
        _ => Some(name),
    }
}

/// The outermost frame's function of `pc`'s inline chain, per DWARF.
fn outermost(loader: &addr2line::Loader, pc: u64) -> Option<String> {
    let mut frames = loader.find_frames(pc).ok()?;
    let mut last = None;
    while let Ok(Some(frame)) = frames.next() {
        if let Some(f) = frame.function {
            last = f.demangle().ok().map(|n| n.into_owned());
        }
    }
    last
}

/// A symbol's demangled form, without hash (as itself when it is not a
/// Rust symbol).
fn demangle(s: &str) -> String {
    addr2line::demangle_auto(s.into(), Some(addr2line::gimli::DW_LANG_Rust)).into_owned()
}

#[cfg(test)]
mod tests;
