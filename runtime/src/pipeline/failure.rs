//! A record that could not be applied, and why: what the error policy, the
//! status and the failures list are given. A module of its own so that the
//! applier, the policy and the status share it without depending on each
//! other.

use crate::engine::ApplyError;

/// A record that could not be applied, and why.
#[derive(Debug)]
pub struct Failure {
    /// The kind of failure, such as `invalid-event` or `guest-trap`.
    pub class: &'static str,
    /// What happened.
    pub message: String,
}

impl Failure {
    /// A failure of `class`.
    pub fn new(class: &'static str, message: impl Into<String>) -> Self {
        Self {
            class,
            message: message.into(),
        }
    }
}

impl From<ApplyError> for Failure {
    fn from(err: ApplyError) -> Self {
        Self::new(err.class(), err.to_string())
    }
}
