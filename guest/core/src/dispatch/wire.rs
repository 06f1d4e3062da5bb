//! The one place where the VMM's internal errors (`crate::errors`, one enum
//! per operation) become the protocol's [`Error`]: each variant is the
//! protocol error of the specification's step that refused the request.
//! Nothing below the dispatch edge builds a protocol error.

use protocol::Error;

use crate::errors::{
    AllocFramesError, ConvertError, FreeFramesError, Invalid, KmallocError, MapError, MapFileError,
    NotABlock, UnmapError, VallocError, VfreeError,
};

impl From<Invalid> for Error {
    fn from(e: Invalid) -> Self {
        match e {
            Invalid::ZeroCount => Error::ZeroCount,
            Invalid::TooLarge => Error::TooLarge,
            Invalid::Misaligned => Error::Misaligned,
            Invalid::NonCanonical => Error::NonCanonical,
            Invalid::Overflow => Error::Overflow,
            Invalid::CrossesCanonicalHole => Error::CrossesCanonicalHole,
            Invalid::PermissionDenied => Error::PermissionDenied,
            Invalid::Reserved => Error::Reserved,
        }
    }
}

impl From<MapError> for Error {
    fn from(e: MapError) -> Self {
        match e {
            MapError::Invalid(e) => e.into(),
            MapError::NotUnusable { addr } => Error::InvalidState { addr },
            MapError::OutOfMemory => Error::OutOfMemory,
        }
    }
}

impl From<UnmapError> for Error {
    fn from(e: UnmapError) -> Self {
        match e {
            UnmapError::Invalid(e) => e.into(),
            UnmapError::NotMapped { addr } => Error::InvalidState { addr },
        }
    }
}

impl From<ConvertError> for Error {
    fn from(e: ConvertError) -> Self {
        match e {
            ConvertError::Invalid(e) => e.into(),
            ConvertError::OutOfMemory => Error::OutOfMemory,
        }
    }
}

impl From<MapFileError> for Error {
    fn from(e: MapFileError) -> Self {
        match e {
            MapFileError::Invalid(e) => e.into(),
            MapFileError::NoSuchFile => Error::NoSuchFile,
            MapFileError::BeyondFile => Error::BeyondFile,
            MapFileError::NotUnusable { addr } => Error::InvalidState { addr },
            MapFileError::OutOfMemory => Error::OutOfMemory,
        }
    }
}

impl From<VallocError> for Error {
    fn from(e: VallocError) -> Self {
        match e {
            VallocError::Invalid(e) => e.into(),
            VallocError::NoVirtualSpace => Error::NoVirtualSpace,
        }
    }
}

impl From<VfreeError> for Error {
    fn from(e: VfreeError) -> Self {
        match e {
            VfreeError::Invalid(e) => e.into(),
            VfreeError::NotHandedOut { addr } => Error::InvalidState { addr },
        }
    }
}

impl From<AllocFramesError> for Error {
    fn from(e: AllocFramesError) -> Self {
        match e {
            AllocFramesError::Invalid(e) => e.into(),
            AllocFramesError::OutOfMemory => Error::OutOfMemory,
        }
    }
}

impl From<FreeFramesError> for Error {
    fn from(e: FreeFramesError) -> Self {
        match e {
            FreeFramesError::Invalid(e) => e.into(),
            FreeFramesError::OutOfRange => Error::OutOfRange,
            FreeFramesError::NotOwned { frame } => Error::NotOwned { frame },
        }
    }
}

impl From<KmallocError> for Error {
    fn from(e: KmallocError) -> Self {
        match e {
            KmallocError::Invalid(e) => e.into(),
            KmallocError::OutOfMemory => Error::OutOfMemory,
        }
    }
}

impl From<NotABlock> for Error {
    fn from(NotABlock { addr }: NotABlock) -> Self {
        Error::InvalidState { addr }
    }
}
