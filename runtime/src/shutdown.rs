//! Asking long-running threads to stop, and waiting for them: one flag that
//! any number of threads watch ([`Shutdown`]), a thread that runs until
//! the flag is set and is then joined for its result ([`Stoppable`]), and a
//! thread that does one thing at a fixed period until it is dropped
//! ([`Periodic`]).
//!
//! A thread that watches the flag finishes what it has in hand (a view
//! commits its batch) and returns; nothing is cut off mid-way.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::Duration;

/// A request to stop, shared by the threads that watch it. Clones share
/// one flag.
#[derive(Debug, Clone, Default)]
pub struct Shutdown(Arc<AtomicBool>);

impl Shutdown {
    /// A flag nobody has set yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Ask every thread that watches this flag to stop.
    pub fn request(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    /// True once a stop was requested.
    pub fn requested(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    /// Sleep `duration`, or less: a stop requested meanwhile ends it within
    /// 50 ms.
    pub fn sleep(&self, duration: Duration) {
        let until = std::time::Instant::now() + duration;
        while !self.requested() {
            let now = std::time::Instant::now();
            if now >= until {
                return;
            }
            std::thread::sleep((until - now).min(Duration::from_millis(50)));
        }
    }
}

/// A named thread that runs until its [`Shutdown`] is requested.
#[derive(Debug)]
pub struct Stoppable<T> {
    name: String,
    shutdown: Shutdown,
    handle: JoinHandle<T>,
}

/// A thread that panicked instead of returning.
#[derive(Debug, thiserror::Error)]
#[error("the thread {0} panicked")]
pub struct Panicked(pub String);

impl<T: Send + 'static> Stoppable<T> {
    /// Run `body` on a thread called `name`; `body` watches `shutdown`.
    ///
    /// # Errors
    /// When the thread cannot be started.
    pub fn spawn(
        name: impl Into<String>,
        shutdown: &Shutdown,
        body: impl FnOnce(&Shutdown) -> T + Send + 'static,
    ) -> std::io::Result<Self> {
        let name = name.into();
        let watched = shutdown.clone();
        let handle = std::thread::Builder::new()
            .name(name.clone())
            .spawn(move || body(&watched))?;
        Ok(Self {
            name,
            shutdown: shutdown.clone(),
            handle,
        })
    }

    /// The thread's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// True once the thread has returned (or panicked).
    pub fn is_finished(&self) -> bool {
        self.handle.is_finished()
    }

    /// Wait for the thread to return, without asking it to stop (it stops
    /// when its flag is requested elsewhere, or on its own).
    ///
    /// # Errors
    /// When the thread panicked.
    pub fn join(self) -> Result<T, Panicked> {
        self.handle.join().map_err(|_| Panicked(self.name))
    }

    /// Ask the thread (and every other watcher of its flag) to stop, and
    /// wait for it.
    ///
    /// # Errors
    /// When the thread panicked.
    pub fn stop(self) -> Result<T, Panicked> {
        self.shutdown.request();
        self.join()
    }
}

/// A named thread that calls `tick` every period until `tick` returns
/// false or the [`Periodic`] is dropped; dropping it wakes the thread at
/// once and waits for it.
#[derive(Debug)]
pub struct Periodic {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Periodic {
    /// Call `tick` on a thread called `name` every `every`, first after one
    /// period.
    ///
    /// # Errors
    /// When the thread cannot be started.
    pub fn start(
        name: impl Into<String>,
        every: Duration,
        mut tick: impl FnMut() -> bool + Send + 'static,
    ) -> std::io::Result<Self> {
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(every) {
                    if !tick() {
                        break;
                    }
                }
            })?;
        Ok(Self {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for Periodic {
    fn drop(&mut self) {
        // Closing the channel wakes the thread at once.
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            // A panic on it was logged by the panic hook; nothing to undo.
            let _ended = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stopped_thread_returns_what_it_did_until_then() {
        let shutdown = Shutdown::new();
        let thread = Stoppable::spawn("counter", &shutdown, |shutdown| {
            let mut turns = 0_u64;
            while !shutdown.requested() {
                turns += 1;
                std::thread::yield_now();
            }
            turns
        })
        .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(5));
        assert!(thread.stop().unwrap() > 0);
        assert!(shutdown.requested(), "clones share one flag");
    }

    #[test]
    fn a_panic_is_reported_with_the_thread_name() {
        let thread = Stoppable::spawn("doomed", &Shutdown::new(), |_| -> () {
            panic!("on purpose");
        })
        .unwrap();
        assert_eq!(
            thread.stop().unwrap_err().to_string(),
            "the thread doomed panicked"
        );
    }
}
