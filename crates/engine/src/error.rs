//! Engine errors. A decline is not an error: it is an [`crate::Outcome`] with a
//! response code. These are the failures that stop an operation from
//! completing at all; the switch answers them with 96 and nothing is applied.

/// Why an operation could not be completed.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Storage(StorageError),
    #[error("storage unavailable: the ledger cannot take requests now")]
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
    /// A limit on how often something may be done was reached.
    #[error("too many {0}")]
    TooMany(String),
    /// An idempotency key already answered another request.
    #[error("this idempotency key was used for a different request")]
    KeyReused,
}

impl EngineError {
    pub(crate) fn invalid(msg: impl Into<String>) -> Self {
        EngineError::Invalid(msg.into())
    }
}

impl From<StorageError> for EngineError {
    fn from(e: StorageError) -> Self {
        match e {
            StorageError::Unavailable(_) => EngineError::Unavailable,
            e => EngineError::Storage(e),
        }
    }
}

/// A failure of the storage backend (see [`crate::storage`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StorageError {
    /// It cannot take requests now: it is being reopened after a failure,
    /// or no database answers.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// Reading or writing failed (a full disk, an I/O error, a lost
    /// connection).
    #[error("storage: {0}")]
    Io(String),
    /// What it holds cannot be read.
    #[error("storage holds damaged data: {0}")]
    Corrupt(String),
    /// A transaction kept meeting others and gave up.
    #[error("storage: a transaction kept conflicting with others")]
    Conflict,
}

pub type Result<T, E = EngineError> = std::result::Result<T, E>;
