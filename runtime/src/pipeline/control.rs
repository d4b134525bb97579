//! Requests to a running view's worker from outside its thread (the API):
//! today, releasing subjects held in quarantine. The worker serves them
//! between records, on its own thread, so a request never races the
//! records it applies.

use std::sync::mpsc::{Receiver, Sender, channel};

use serde::{Deserialize, Serialize};

/// One request.
#[derive(Debug)]
pub enum Control {
    /// Release `subject` (every quarantined subject when `None`): apply its
    /// held records in order with the current module.
    Release {
        /// The subject, or every one.
        subject: Option<String>,
        /// Where the outcome goes.
        reply: tokio::sync::oneshot::Sender<Result<ReleaseReport, String>>,
    },
}

/// What a release did, per subject.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseReport {
    /// Each subject released or tried, in order.
    pub subjects: Vec<SubjectRelease>,
}

/// What a release did with one subject.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubjectRelease {
    /// The subject.
    pub subject: String,
    /// Held records applied (and no longer held).
    pub applied: u64,
    /// Held records still held: the one that failed again and those behind
    /// it.
    pub still_held: u64,
    /// Why the first record still held failed again, if one did.
    pub error: Option<String>,
}

/// The sending end, kept by the API.
#[derive(Debug, Clone)]
pub struct Controls(Sender<Control>);

/// The receiving end, kept by the worker.
#[derive(Debug)]
pub struct ControlQueue(Receiver<Control>);

/// Why a request got no answer.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// The view's worker has stopped.
    #[error("the view is not running (its worker stopped)")]
    Stopped,
    /// The worker refused the request.
    #[error("{0}")]
    Refused(String),
}

/// A connected pair.
pub fn controls() -> (Controls, ControlQueue) {
    let (sender, receiver) = channel();
    (Controls(sender), ControlQueue(receiver))
}

impl Controls {
    /// Ask the worker to release `subject` (every one when `None`), and
    /// wait for its answer.
    ///
    /// # Errors
    /// When the worker has stopped or failed to release.
    pub async fn release(&self, subject: Option<String>) -> Result<ReleaseReport, ControlError> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.0
            .send(Control::Release { subject, reply })
            .map_err(|_| ControlError::Stopped)?;
        answer
            .await
            .map_err(|_| ControlError::Stopped)?
            .map_err(ControlError::Refused)
    }
}

impl ControlQueue {
    /// The next request waiting, if any; never blocks.
    pub fn next(&self) -> Option<Control> {
        self.0.try_recv().ok()
    }
}
