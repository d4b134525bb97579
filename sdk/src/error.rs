//! The error a projection returns for an event it cannot apply.
//!
//! The runtime hands such an event to the view's error policy (stop, skip or
//! dead-letter). A projection is deterministic, so retrying cannot help and
//! the runtime does not retry guest errors.

use std::fmt;

/// An error returned by a projection, with a stable machine-readable `code`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    /// A short, stable class such as `invalid-data`.
    pub code: String,
    /// A message for people.
    pub message: String,
}

impl Error {
    /// Code of an event whose data does not have the expected shape.
    pub const INVALID_DATA: &'static str = "invalid-data";
    /// Code of a stored row that does not deserialise into the projection's
    /// row type, for instance after an incompatible change of that type.
    pub const INVALID_STATE: &'static str = "invalid-state";
    /// Code of an event the projection refuses for a domain reason.
    pub const REJECTED: &'static str = "rejected";

    /// An error with a code of your own.
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            message: message.into(),
        }
    }

    /// The event's data does not have the expected shape.
    pub fn invalid_data(message: impl Into<String>) -> Self {
        Self::new(Self::INVALID_DATA, message)
    }

    /// The projection refuses the event for a domain reason.
    pub fn rejected(message: impl Into<String>) -> Self {
        Self::new(Self::REJECTED, message)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for Error {}

impl From<serde_json::Error> for Error {
    fn from(err: serde_json::Error) -> Self {
        Self::invalid_data(err.to_string())
    }
}
