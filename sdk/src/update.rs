//! What a projection returns: set the row, delete it, or leave it alone.
//!
//! [`Update`] carries a typed row; [`RawUpdate`] carries the row as JSON
//! text, which is what crosses the component boundary and what the runtime
//! stores.

/// The change a projection makes to its subject's row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Update<R> {
    /// Store this row, replacing any previous one.
    Set(R),
    /// Remove the row.
    Delete,
    /// Leave the row as it is.
    Ignore,
}

/// An [`Update`] whose row is JSON text.
pub type RawUpdate = Update<String>;

impl<R> Update<R> {
    /// Map the row of a `Set`, keeping `Delete` and `Ignore`.
    pub fn map<S>(self, f: impl FnOnce(R) -> S) -> Update<S> {
        match self {
            Update::Set(row) => Update::Set(f(row)),
            Update::Delete => Update::Delete,
            Update::Ignore => Update::Ignore,
        }
    }

    /// A short name for the kind of update: `set`, `delete` or `ignore`.
    pub fn kind(&self) -> &'static str {
        match self {
            Update::Set(_) => "set",
            Update::Delete => "delete",
            Update::Ignore => "ignore",
        }
    }
}
