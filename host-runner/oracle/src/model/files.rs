//! The files the host supplied at boot: what the model knows of their
//! bytes, and the bytes any page holds (written data, a file page, zeros).

use std::sync::Arc;

use protocol::{pattern, Hello, PAGE_SIZE};

use super::pages::ModelState;
use super::{Model, PageBytes};

/// How the runner built one file: byte `o` is `pattern_byte(seed, o)`
/// (formats.rs, "The file images").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FileSpec {
    pub pages: u64,
    pub seed: u64,
}

/// The file specs do not match the guest's `Hello::files`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FilesError {
    #[error("{given} file specs for the {reported} files the guest reports")]
    Count { given: usize, reported: usize },
    #[error("file {file}: the spec says {spec} pages, the guest reports {reported}")]
    Pages {
        file: usize,
        spec: u64,
        reported: u64,
    },
}

/// Page `page` of a file of `seed`.
pub fn file_page(seed: u64, page: u64) -> [u8; PAGE_SIZE as usize] {
    let mut bytes = [0u8; PAGE_SIZE as usize];
    fill_file_page(seed, page, &mut bytes);
    bytes
}

/// [`file_page`], made in place.
pub fn fill_file_page(seed: u64, page: u64, bytes: &mut [u8; PAGE_SIZE as usize]) {
    pattern::fill(seed, page.wrapping_mul(PAGE_SIZE), bytes);
}

impl Model {
    /// The model of a freshly booted guest whose files were built from
    /// `files` (one spec per `hello.files` entry, same pages).
    pub fn with_files(hello: &Hello, files: &[FileSpec]) -> Result<Self, FilesError> {
        if files.len() != hello.files.len() {
            return Err(FilesError::Count {
                given: files.len(),
                reported: hello.files.len(),
            });
        }
        for (file, (spec, info)) in files.iter().zip(&hello.files).enumerate() {
            if spec.pages != info.pages {
                return Err(FilesError::Pages {
                    file,
                    spec: spec.pages,
                    reported: info.pages,
                });
            }
        }
        let mut m = Model::new(hello);
        m.files = files.iter().copied().map(Some).collect();
        Ok(m)
    }

    /// The seed of `file`, or why its bytes are unknown.
    pub(super) fn file_seed(&self, file: u8) -> Result<u64, String> {
        match self.files.get(usize::from(file)) {
            Some(Some(spec)) => Ok(spec.seed),
            Some(None) => Err(format!(
                "the bytes of file {file} (the model was made without file specs)"
            )),
            None => Err(format!("file {file}, which the guest does not have")),
        }
    }

    /// Whether the bytes of every file page in `first..end` are known.
    pub(super) fn file_bytes_known(&self, first: u64, end: u64) -> Result<(), String> {
        for (_, _, st) in self.pages.runs_in(first, end) {
            if let ModelState::PresentMmap { file, .. } | ModelState::NotPresentMmap { file, .. } =
                st
            {
                self.file_seed(file)?;
            }
        }
        Ok(())
    }

    /// The bytes page `vpn` holds (or will hold once loaded): the host's
    /// data, the file page of a clean or not-present file page, or zeros.
    pub(super) fn page_bytes(&self, vpn: u64) -> Option<PageBytes> {
        if let Some(d) = self.data.get(&vpn) {
            return Some(d.clone());
        }
        match self.pages.get(vpn) {
            Some(
                ModelState::PresentMmap { file, page, .. }
                | ModelState::NotPresentMmap { file, page },
            ) => {
                let seed = self.file_seed(file).ok()?;
                Some(Arc::new(file_page(seed, page)))
            }
            _ => None,
        }
    }

    /// Makes page `vpn`'s bytes the host's own data (before it becomes a
    /// private or anonymous page whose bytes no file gives any more).
    pub(super) fn materialize(&mut self, vpn: u64) {
        if self.data.contains_key(&vpn) {
            return;
        }
        if let Some(b) = self.page_bytes(vpn) {
            self.dirty.page(vpn);
            self.data.insert(vpn, b);
        }
    }
}
