//! Model files on disk: the core's format ([`tinyddpm_core::file`]) read into a boxed model
//! and written atomically.

use std::path::Path;

use tinyddpm_core::Model;
use tinyddpm_core::file::{self, FileError, Header};

/// Why a model file could not be loaded or saved.
#[derive(Debug, thiserror::Error)]
pub enum ModelFileError {
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The bytes are not a valid model of the expected shape.
    #[error("{path}: {source}")]
    Format {
        /// The file.
        path: String,
        /// What the core's decoder found.
        source: FileError,
    },
}

/// A zeroed model on the heap (466 KB for the seed size: too big for small stacks).
pub fn boxed_zero<const H: usize, const B: usize>() -> Box<Model<H, B>> {
    Box::new(Model::ZERO)
}

/// Reads a model file of shape `H`, `B`.
pub fn load<const H: usize, const B: usize>(
    path: &Path,
) -> Result<(Box<Model<H, B>>, Header), ModelFileError> {
    let bytes = std::fs::read(path).map_err(|source| ModelFileError::Io {
        path: path.display().to_string(),
        source,
    })?;
    let mut model = boxed_zero::<H, B>();
    let header =
        file::decode_into(&bytes, &mut model).map_err(|source| ModelFileError::Format {
            path: path.display().to_string(),
            source,
        })?;
    Ok((model, header))
}

/// Reads only a model file's header (any shape).
pub fn read_header(path: &Path) -> Result<Header, ModelFileError> {
    let bytes = std::fs::read(path).map_err(|source| ModelFileError::Io {
        path: path.display().to_string(),
        source,
    })?;
    file::read_header(&bytes)
        .map(|(h, _)| h)
        .map_err(|source| ModelFileError::Format {
            path: path.display().to_string(),
            source,
        })
}

/// Encodes a model with its header into bytes.
pub fn encode<const H: usize, const B: usize>(
    model: &Model<H, B>,
    header: &Header,
) -> Result<Vec<u8>, FileError> {
    let mut bytes = vec![0u8; file::encoded_len(header)?];
    let n = file::encode(model, header, &mut bytes)?;
    bytes.truncate(n);
    Ok(bytes)
}

/// Writes a model file atomically (temporary file + rename).
pub fn save<const H: usize, const B: usize>(
    path: &Path,
    model: &Model<H, B>,
    header: &Header,
) -> Result<(), ModelFileError> {
    let bytes = encode(model, header).map_err(|source| ModelFileError::Format {
        path: path.display().to_string(),
        source,
    })?;
    crate::atomic::write(path, &bytes).map_err(|source| ModelFileError::Io {
        path: path.display().to_string(),
        source,
    })
}
