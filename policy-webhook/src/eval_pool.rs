//! The threads that evaluate admission reviews.
//!
//! A fixed set of threads takes jobs from one queue and blocks on it when
//! there is nothing to do. Dedicated threads keep each one's RVM and caches
//! warm and hand work over more cheaply than tokio's blocking pool. A rayon
//! pool did this before, but its idle workers spin (rounds of `sched_yield`)
//! before they sleep: with one library template at 300 req/s that was a
//! fifth of the webhook's CPU samples (perf), taken from the cores the
//! server's own I/O threads need. Written by hand because it is a queue and
//! a loop: a thread-pool crate would bring back a scheduler we do not use.

use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, mpsc};

type Job = Box<dyn FnOnce() + Send + 'static>;

/// Evaluation threads fed from one queue; dropping the pool ends them once
/// the queue is empty.
#[derive(Debug)]
pub(crate) struct EvalPool {
    queue: mpsc::Sender<Job>,
}

impl EvalPool {
    /// Starts `threads` (at least one) threads named `regard-eval-N`.
    pub(crate) fn new(threads: usize) -> std::io::Result<EvalPool> {
        let (queue, jobs) = mpsc::channel::<Job>();
        let jobs = Arc::new(Mutex::new(jobs));
        for i in 0..threads.max(1) {
            let jobs = Arc::clone(&jobs);
            std::thread::Builder::new()
                .name(format!("regard-eval-{i}"))
                .spawn(move || work(&jobs))?;
        }
        Ok(EvalPool { queue })
    }

    /// Queues `job`. A job that panics is logged and its thread goes on;
    /// whatever it was to send is dropped, which its caller sees.
    pub(crate) fn spawn(&self, job: impl FnOnce() + Send + 'static) {
        // Sending fails only when every thread has ended, which they do not
        // while the pool lives; the job is then dropped, as after a panic.
        let _ = self.queue.send(Box::new(job));
    }
}

fn work(jobs: &Mutex<mpsc::Receiver<Job>>) {
    loop {
        // One idle thread waits on the queue, the others on the lock: every
        // one of them sleeps in the kernel.
        let next = match jobs.lock() {
            Ok(queue) => queue.recv(),
            Err(poisoned) => poisoned.into_inner().recv(),
        };
        let Ok(job) = next else {
            return;
        };
        if std::panic::catch_unwind(AssertUnwindSafe(job)).is_err() {
            tracing::error!("an evaluation panicked");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_every_job_and_survives_a_panic() {
        let pool = EvalPool::new(2).unwrap();
        let (tx, rx) = mpsc::channel();
        pool.spawn(|| panic!("boom"));
        for i in 0..100 {
            let tx = tx.clone();
            pool.spawn(move || tx.send(i).unwrap());
        }
        let mut got: Vec<i32> = (0..100).map(|_| rx.recv().unwrap()).collect();
        got.sort_unstable();
        assert_eq!(got, (0..100).collect::<Vec<_>>());
    }

    #[test]
    fn a_dropped_job_drops_what_it_would_send() {
        let pool = EvalPool::new(1).unwrap();
        let (tx, rx) = mpsc::channel::<()>();
        pool.spawn(move || {
            let _keep = tx;
            panic!("boom");
        });
        // The sender went with the panicking job: the receiver sees the end.
        assert!(rx.recv().is_err());
    }
}
