//! The run's own queue: first attempts in order (longest expected first),
//! then retries; test groups, batches of short tests, and the stop at
//! `--fail-fast` / `--max-fail` or a resource failure.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use super::Job;
use crate::process::Watchdog;
use crate::schedule::groups::GroupLimits;

/// The most tests one batch runs (a crash reruns what is left one by one).
const MAX_BATCH_TESTS: usize = 256;

/// Which tests may share a process, for the queue (see [`super::Runner::batch_classes`]).
#[derive(Debug, Clone)]
pub(super) struct BatchClass {
    pub(super) key: String,
    pub(super) min_batch: Duration,
    pub(super) alone_above: Duration,
    pub(super) startup: Duration,
}

/// The shared queue: first attempts in order, then retries.
pub(super) struct Queue {
    pub(super) state: Mutex<QueueState>,
    changed: Condvar,
    /// Which tests may share a process, by index; empty: any.
    classes: Vec<Option<BatchClass>>,
}

pub(super) struct QueueState {
    pub(super) first: VecDeque<Job>,
    retries: VecDeque<Job>,
    /// Attempts handed out and not yet done: they may still queue a retry.
    in_flight: usize,
    stopped: bool,
    /// Definite failures so far, for `--max-fail` and `--fail-fast`.
    failures: usize,
    pub(super) lost: usize,
    pub(super) resource_failure: Option<String>,
    /// Expected time of the first attempts still queued.
    remaining: Duration,
    /// Test groups: a queued test waits while its group is full.
    groups: GroupLimits,
}

impl QueueState {
    /// With test groups: the first queued attempt whose group has room
    /// (first attempts, longest first, then retries), so a worker never
    /// idles while some test could start. Grouped runs are not batched.
    pub(super) fn next_in_groups(&mut self) -> Option<Job> {
        let groups = &self.groups;
        let job = if let Some(position) = self.first.iter().position(|j| groups.can_start(j.index))
        {
            self.first.remove(position)
        } else {
            let position = self
                .retries
                .iter()
                .position(|j| groups.can_start(j.index))?;
            self.retries.remove(position)
        }?;
        self.groups.started(job.index);
        self.in_flight += 1;
        Some(job)
    }
}

/// The smallest batch worth a process start-up (pytest's costs about 0.5 s).
const MIN_BATCH: Duration = Duration::from_secs(1);

impl Queue {
    pub(super) fn new(jobs: impl IntoIterator<Item = Job>, expected: &[Duration]) -> Queue {
        let first: VecDeque<Job> = jobs.into_iter().collect();
        let remaining = first.iter().filter_map(|job| expected.get(job.index)).sum();
        Queue {
            state: Mutex::new(QueueState {
                first,
                remaining,
                retries: VecDeque::new(),
                in_flight: 0,
                stopped: false,
                failures: 0,
                lost: 0,
                resource_failure: None,
                groups: GroupLimits::default(),
            }),
            changed: Condvar::new(),
            classes: Vec::new(),
        }
    }

    /// Batches only join tests of one class (see [`super::Runner::batch_classes`]).
    pub(super) fn with_batches(mut self, classes: Vec<Option<BatchClass>>) -> Queue {
        self.classes = classes;
        self
    }

    /// The class of the test at `index`: `None` runs alone.
    pub(super) fn class(&self, index: usize) -> Option<&BatchClass> {
        if self.classes.is_empty() {
            static ANY: std::sync::OnceLock<BatchClass> = std::sync::OnceLock::new();
            return Some(ANY.get_or_init(|| BatchClass {
                key: String::new(),
                min_batch: MIN_BATCH,
                alone_above: Duration::MAX,
                startup: Duration::ZERO,
            }));
        }
        self.classes.get(index)?.as_ref()
    }

    /// The next attempt, waiting while a running attempt may still queue a
    /// retry. When batching for `workers`, a first attempt comes with the
    /// first attempts after it up to a target of expected time: the
    /// remaining work over 4 x workers (guided self-scheduling: big batches
    /// while much is left, small ones at the end so the workers finish
    /// together), and at least [`MIN_BATCH`] so tiny tests share a start-up.
    pub(super) fn next(
        &self,
        watchdog: &Watchdog,
        workers: Option<usize>,
        expected: &[Duration],
    ) -> Option<Vec<Job>> {
        let mut state = self.state.lock().unwrap();
        loop {
            if state.stopped || watchdog.is_interrupted() {
                return None;
            }
            if state.groups.is_active() {
                if let Some(job) = state.next_in_groups() {
                    return Some(vec![job]);
                }
            } else if let Some(job) = state.first.pop_front() {
                let mut batch = vec![job];
                let time = |index: usize| expected.get(index).copied().unwrap_or_default();
                let mut total = time(job.index);
                if let Some(workers) = workers
                    && let Some(class) = self.class(job.index)
                    && total.saturating_sub(class.startup) <= class.alone_above
                {
                    total = total.saturating_sub(class.startup);
                    let target =
                        (state.remaining / (4 * workers.max(1) as u32)).max(class.min_batch);
                    // The queued first attempts of the same class that fit,
                    // in queue order (longest first).
                    let mut position = 0;
                    while position < state.first.len()
                        && total < target
                        && batch.len() < MAX_BATCH_TESTS
                    {
                        let next = state.first[position].index;
                        // What it costs in a batch: no start-up of its own.
                        let cost = time(next).saturating_sub(class.startup);
                        let fits = self
                            .class(next)
                            .is_some_and(|c| c.key == class.key && cost <= c.alone_above)
                            && total + cost <= target;
                        if fits {
                            total += cost;
                            batch.extend(state.first.remove(position));
                        } else {
                            position += 1;
                        }
                    }
                }
                state.remaining = state.remaining.saturating_sub(total);
                state.in_flight += batch.len();
                return Some(batch);
            }
            if !state.groups.is_active()
                && let Some(job) = state.retries.pop_front()
            {
                state.in_flight += 1;
                return Some(vec![job]);
            }
            if state.first.is_empty() && state.retries.is_empty() && state.in_flight == 0 {
                return None;
            }
            // The timeout lets an interrupt end the wait without a wake-up.
            state = self
                .changed
                .wait_timeout(state, Duration::from_millis(100))
                .unwrap()
                .0;
        }
    }

    /// An attempt is over; `retry` goes behind the first attempts.
    /// An attempt is over. Its `retry` is queued unless the queue has
    /// stopped; an attempt that failed under a `failure_limit` with no retry
    /// queued is a definite failure, and the queue stops at the limit's
    /// (fail-fast: 1; `--max-fail N`). Returns whether the retry was queued.
    pub(super) fn done(&self, retry: Option<Job>, failure_limit: Option<usize>) -> bool {
        let mut state = self.state.lock().unwrap();
        state.in_flight -= 1;
        let queued = retry.is_some() && !state.stopped;
        if queued {
            state.retries.extend(retry);
        } else if let Some(limit) = failure_limit {
            state.failures += 1;
            if state.failures >= limit {
                state.stopped = true;
            }
        }
        self.changed.notify_all();
        queued
    }

    /// The run cannot go on (no thread or process to be had): nothing new
    /// starts; the first such failure is the one reported.
    pub(super) fn fail(&self, message: String) {
        let mut state = self.state.lock().unwrap();
        state.stopped = true;
        state.resource_failure.get_or_insert(message);
    }

    /// Stopped by a resource failure (or fail-fast): nothing new starts.
    pub(super) fn is_stopped(&self) -> bool {
        self.state.lock().unwrap().stopped
    }

    /// Test groups apply to the run's tests.
    pub(super) fn with_groups(self, groups: GroupLimits) -> Queue {
        self.state.lock().unwrap().groups = groups;
        self
    }

    /// A test's attempt is over: its group has room again.
    pub(super) fn release(&self, index: usize) {
        self.state.lock().unwrap().groups.finished(index);
        self.changed.notify_all();
    }

    pub(super) fn lose_worker(&self) {
        self.state.lock().unwrap().lost += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    pub(super) fn batches_shrink_as_the_queue_drains() {
        let watchdog = Watchdog::start();
        // One 10 s test, then forty 0.5 s tests: 30 s in all, 2 workers.
        let mut expected = vec![Duration::from_secs(10)];
        expected.extend(std::iter::repeat_n(Duration::from_millis(500), 40));
        let jobs = (0..expected.len()).map(|index| Job {
            index,
            attempt: 1,
            failed_before: false,
        });
        let queue = Queue::new(jobs, &expected);
        let mut sizes = Vec::new();
        while let Some(batch) = queue.next(&watchdog, Some(2), &expected) {
            sizes.push(batch.len());
            queue.state.lock().unwrap().in_flight -= batch.len();
        }
        assert_eq!(sizes[0], 1, "a long test runs alone");
        assert_eq!(
            sizes.iter().sum::<usize>(),
            41,
            "every test handed out once"
        );
        assert!(
            sizes[1] > *sizes.last().unwrap(),
            "batches shrink: {sizes:?}"
        );
        assert!(
            sizes.iter().skip(1).all(|&n| n >= 2),
            "short tests share a start-up: {sizes:?}"
        );
    }

    #[test]
    pub(super) fn fail_fast_refuses_retries_once_stopped() {
        let watchdog = Watchdog::start();
        let job = |index| Job {
            index,
            attempt: 1,
            failed_before: false,
        };
        let queue = Queue::new([job(0), job(1), job(2)], &[]);
        let a = queue.next(&watchdog, None, &[]).unwrap()[0];
        let b = queue.next(&watchdog, None, &[]).unwrap()[0];
        // `a` fails for good: the queue stops.
        assert!(!queue.done(None, Some(1)));
        // `b` failed too and wants a retry: refused, so its attempt is final.
        assert!(!queue.done(
            Some(Job {
                attempt: 2,
                failed_before: true,
                ..b
            }),
            Some(1)
        ));
        assert!(queue.next(&watchdog, None, &[]).is_none());
        let _ = a;
    }

    #[test]
    pub(super) fn max_fail_stops_at_the_nth_definite_failure() {
        let watchdog = Watchdog::start();
        let job = |index| Job {
            index,
            attempt: 1,
            failed_before: false,
        };
        let queue = Queue::new([job(0), job(1), job(2)], &[]);
        let _ = queue.next(&watchdog, None, &[]).unwrap();
        queue.done(None, Some(2));
        assert!(
            queue.next(&watchdog, None, &[]).is_some(),
            "one failure of two"
        );
        queue.done(None, Some(2));
        assert!(queue.next(&watchdog, None, &[]).is_none(), "stopped at two");
    }

    #[test]
    pub(super) fn retries_come_after_first_attempts() {
        let watchdog = Watchdog::start();
        let job = |index| Job {
            index,
            attempt: 1,
            failed_before: false,
        };
        let queue = Queue::new([job(0), job(1)], &[]);
        let next = |queue: &Queue| queue.next(&watchdog, None, &[]).map(|jobs| jobs[0]);
        let first = next(&queue).unwrap();
        assert!(queue.done(
            Some(Job {
                attempt: 2,
                failed_before: true,
                ..first
            }),
            None
        ));
        assert_eq!(next(&queue).unwrap().index, 1);
        queue.done(None, None);
        let retry = next(&queue).unwrap();
        assert_eq!((retry.index, retry.attempt), (0, 2));
        queue.done(None, Some(1));
        assert!(next(&queue).is_none());
    }
}
