//! Requests to a running view's worker from outside its thread (the API):
//! releasing and discarding subjects held in quarantine. The worker serves
//! them between records, on its own thread, so a request never races the
//! records it applies. The queue is bounded ([`CAPACITY`]): a request that
//! finds it full is refused at once, never queued without end.

use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};

/// Requests waiting for the worker at most.
pub const CAPACITY: usize = 16;

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
    /// Discard `subject`'s held records: to the view's dead-letter topic
    /// when it has one, else dropped.
    Discard {
        /// The subject (empty: the records that had none).
        subject: String,
        /// Where the outcome goes: `None` when the subject is not held.
        reply: tokio::sync::oneshot::Sender<Result<Option<SubjectDiscard>, String>>,
    },
}

/// What a discard did with one subject.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubjectDiscard {
    /// The subject.
    pub subject: String,
    /// Held records taken out of the quarantine.
    pub discarded: u64,
    /// The dead-letter topic they are written to; `None`: dropped (the
    /// view has no `dead_letter_topic`), each logged by origin.
    pub dead_letter_topic: Option<String>,
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
pub struct Controls(SyncSender<Control>);

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
    /// Too many requests wait already.
    #[error("the view's worker has {CAPACITY} requests waiting already; retry later")]
    Busy,
}

/// A connected pair.
pub fn controls() -> (Controls, ControlQueue) {
    let (sender, receiver) = sync_channel(CAPACITY);
    (Controls(sender), ControlQueue(receiver))
}

impl Controls {
    /// Ask the worker to release `subject` (every one when `None`), and
    /// wait for its answer.
    ///
    /// # Errors
    /// When the worker has stopped, is busy, or failed to release.
    pub async fn release(&self, subject: Option<String>) -> Result<ReleaseReport, ControlError> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.send(Control::Release { subject, reply })?;
        answer
            .await
            .map_err(|_| ControlError::Stopped)?
            .map_err(ControlError::Refused)
    }

    /// Ask the worker to discard `subject`'s held records, and wait for its
    /// answer (`None`: the subject is not held).
    ///
    /// # Errors
    /// When the worker has stopped, is busy, or failed to discard.
    pub async fn discard(&self, subject: String) -> Result<Option<SubjectDiscard>, ControlError> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.send(Control::Discard { subject, reply })?;
        answer
            .await
            .map_err(|_| ControlError::Stopped)?
            .map_err(ControlError::Refused)
    }

    fn send(&self, control: Control) -> Result<(), ControlError> {
        self.0.try_send(control).map_err(|err| match err {
            TrySendError::Full(_) => ControlError::Busy,
            TrySendError::Disconnected(_) => ControlError::Stopped,
        })
    }
}

impl ControlQueue {
    /// The next request waiting, if any; never blocks.
    pub fn next(&self) -> Option<Control> {
        self.0.try_recv().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_queue_refuses_at_once() {
        let (controls, queue) = controls();
        let mut replies = Vec::new();
        for _ in 0..CAPACITY {
            let (reply, answer) = tokio::sync::oneshot::channel();
            replies.push(answer);
            controls
                .send(Control::Release {
                    subject: None,
                    reply,
                })
                .expect("room in the queue");
        }
        let (reply, _answer) = tokio::sync::oneshot::channel();
        assert!(matches!(
            controls.send(Control::Release {
                subject: None,
                reply
            }),
            Err(ControlError::Busy)
        ));
        // Served, the queue takes requests again.
        assert!(queue.next().is_some());
        let (reply, _answer) = tokio::sync::oneshot::channel();
        assert!(
            controls
                .send(Control::Discard {
                    subject: String::new(),
                    reply
                })
                .is_ok()
        );
        drop(queue);
        let (reply, _answer) = tokio::sync::oneshot::channel();
        assert!(matches!(
            controls.send(Control::Release {
                subject: None,
                reply
            }),
            Err(ControlError::Stopped)
        ));
    }
}
