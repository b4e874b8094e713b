//! Engine errors. A decline is not an error: it is an [`crate::Outcome`] with a
//! response code. These are the failures that stop an operation from
//! completing at all; the switch answers them with 96 and nothing is applied.

/// Why an operation could not be completed.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("storage: {0}")]
    Storage(#[from] sled::Error),
    #[error("storage unavailable: the ledger is being reopened after a storage failure")]
    Unavailable,
    #[error("not made durable: {0}")]
    NotDurable(String),
    #[error("stored record {what} cannot be read: {reason}")]
    Corrupt { what: &'static str, reason: String },
    #[error("stored data has format version {found}; this release reads {supported}")]
    FormatVersion { found: u8, supported: u8 },
    #[error("arithmetic overflow in {0}")]
    Overflow(&'static str),
    /// A file outside the ledger (archive, backup) could not be written or
    /// read, or is damaged.
    #[error("{}: {reason}", path.display())]
    File {
        path: std::path::PathBuf,
        reason: String,
    },
    #[error("{0}")]
    Invalid(String),
    #[error("{what} {key} not found")]
    NotFound { what: &'static str, key: String },
    #[error("{what} {key} already exists")]
    Exists { what: &'static str, key: String },
}

impl EngineError {
    pub(crate) fn invalid(msg: impl Into<String>) -> Self {
        EngineError::Invalid(msg.into())
    }
}

pub type Result<T, E = EngineError> = std::result::Result<T, E>;
