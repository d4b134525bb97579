//! A record that could not be applied, and why: what the error policy, the
//! status and the failures list are given. A module of its own so that the
//! applier, the policy and the status share it without depending on each
//! other.

use std::borrow::Cow;

use crate::engine::ApplyError;

/// A record that could not be applied, and why.
#[derive(Debug)]
pub struct Failure {
    /// The kind of failure, such as `invalid-event`, `guest-trap`, or for
    /// an event the projection refused, `guest-` and its own code
    /// (`guest-rejected`).
    pub class: Cow<'static, str>,
    /// What happened.
    pub message: String,
}

/// The longest failure message kept, in bytes: it travels in a dead
/// letter's `projector-error-message` header and in the status, and a
/// broker may refuse a record whose headers are too large. Longer ones are
/// cut at a character boundary and marked.
pub const MAX_MESSAGE_BYTES: usize = 4096;

impl Failure {
    /// A failure of `class`, its message cut to [`MAX_MESSAGE_BYTES`].
    pub fn new(class: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        Self {
            class: class.into(),
            message: crate::engine::truncate(message.into(), MAX_MESSAGE_BYTES),
        }
    }
}

impl From<ApplyError> for Failure {
    fn from(err: ApplyError) -> Self {
        Self::new(err.failure_class(), err.failure_message())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_message_is_cut_at_a_character_boundary() {
        let long = "é".repeat(MAX_MESSAGE_BYTES);
        let failure = Failure::new("guest-error", long);
        assert!(failure.message.len() <= MAX_MESSAGE_BYTES);
        assert!(failure.message.ends_with("..."));
        assert_eq!(Failure::new("x", "short").message, "short");
        let from_guest = Failure::from(ApplyError::Guest {
            code: "rejected".to_owned(),
            message: "x".repeat(1 << 20),
        });
        assert!(from_guest.message.len() <= MAX_MESSAGE_BYTES);
        assert_eq!(from_guest.class, "guest-rejected");
        assert!(
            from_guest
                .message
                .starts_with("the projection refused the event: xxx"),
            "the code is in the class, not repeated in the message"
        );
        // A code that would pass for one of the engine's own classes, or is
        // no plain token, is not a class: it stays in the message.
        for code in ["trap", "Not A Token"] {
            let failure = Failure::from(ApplyError::Guest {
                code: code.to_owned(),
                message: "m".to_owned(),
            });
            assert_eq!(failure.class, "guest-error");
            assert!(
                failure.message.contains(&format!("{code:?}")),
                "{}",
                failure.message
            );
        }
    }
}
