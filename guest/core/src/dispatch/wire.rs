//! The one place where the VMM's internal errors (`crate::errors`, one enum
//! per operation) become the protocol's [`Error`]: each variant is the
//! protocol error of the specification's step that refused the request.
//! Nothing below the dispatch edge builds a protocol error.

use protocol::Error;

use crate::errors::{
    AllocFramesError, ConvertError, CreateSpaceError, DestroySpaceError, FreeFramesError, Invalid,
    KmallocError, MapError, MapFileError, NoSuchSpace, NotABlock, ShareError, UnmapError,
    VallocError, VfreeError,
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

/// `From<E> for Error` for each operation's error enum `E`: its
/// `Invalid(e)` as the input check's error (above), and each other variant
/// as listed (one match with no `_` arm, so a variant left out does not
/// compile).
macro_rules! to_protocol {
    ($($op:ident { $($variant:pat => $error:expr,)* })*) => {$(
        impl From<$op> for Error {
            fn from(e: $op) -> Self {
                match e {
                    $op::Invalid(e) => e.into(),
                    $($variant => $error,)*
                }
            }
        }
    )*};
}

to_protocol! {
    MapError {
        MapError::NotUnusable { addr } => Error::InvalidState { addr },
        MapError::OutOfMemory => Error::OutOfMemory,
        MapError::WriteAndExecute => Error::WriteAndExecute,
    }
    UnmapError {
        UnmapError::NotMapped { addr } => Error::InvalidState { addr },
    }
    ConvertError {
        ConvertError::OutOfMemory => Error::OutOfMemory,
    }
    MapFileError {
        MapFileError::NoSuchFile => Error::NoSuchFile,
        MapFileError::BeyondFile => Error::BeyondFile,
        MapFileError::NotUnusable { addr } => Error::InvalidState { addr },
        MapFileError::OutOfMemory => Error::OutOfMemory,
    }
    VallocError {
        VallocError::NoVirtualSpace => Error::NoVirtualSpace,
    }
    VfreeError {
        VfreeError::NotHandedOut { addr } => Error::InvalidState { addr },
    }
    AllocFramesError {
        AllocFramesError::OutOfMemory => Error::OutOfMemory,
    }
    FreeFramesError {
        FreeFramesError::OutOfRange => Error::OutOfRange,
        FreeFramesError::NotOwned { frame } => Error::NotOwned { frame },
    }
    KmallocError {
        KmallocError::OutOfMemory => Error::OutOfMemory,
    }
    ShareError {
        ShareError::NoSuchSpace => Error::NoSuchSpace,
        ShareError::NotShareable { addr } => Error::InvalidState { addr },
        ShareError::NotUnusable { addr } => Error::InvalidState { addr },
        ShareError::OutOfMemory => Error::OutOfMemory,
    }
}

impl From<NotABlock> for Error {
    fn from(NotABlock { addr }: NotABlock) -> Self {
        Error::InvalidState { addr }
    }
}

impl From<CreateSpaceError> for Error {
    fn from(e: CreateSpaceError) -> Self {
        match e {
            CreateSpaceError::TooManySpaces => Error::TooManySpaces,
            CreateSpaceError::OutOfMemory => Error::OutOfMemory,
        }
    }
}

impl From<NoSuchSpace> for Error {
    fn from(NoSuchSpace: NoSuchSpace) -> Self {
        Error::NoSuchSpace
    }
}

impl From<DestroySpaceError> for Error {
    fn from(e: DestroySpaceError) -> Self {
        match e {
            DestroySpaceError::NoSuchSpace => Error::NoSuchSpace,
            DestroySpaceError::SpaceInUse => Error::SpaceInUse,
        }
    }
}
