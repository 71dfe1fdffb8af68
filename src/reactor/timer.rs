//! Timers: a slab of callbacks and a binary heap of deadlines with lazy
//! cancellation.
//!
//! Cancelling frees the slab slot at once and leaves the heap entry behind;
//! an entry whose slot has moved on to a new generation is dead and is
//! skipped when it reaches the top. When dead entries outnumber live ones
//! the heap is rebuilt without them, so setting and cancelling any number of
//! timers costs `O(log n)` each, amortised, and memory does not grow with
//! the number of cancellations.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io;
use std::time::{Duration, Instant};

use super::failure::{guarded, Origin};
use super::slab::Slab;
use super::Context;

/// A one-shot timer's callback.
pub(crate) type TimerFn = Box<dyn FnOnce(&mut Context, TimerId) -> io::Result<()>>;
/// A repeating timer's callback.
pub(crate) type RepeatFn = Box<dyn FnMut(&mut Context, TimerId) -> io::Result<()>>;

/// The longest delay a timer can have. Longer ones are clamped to it: a
/// timer a century away is as good as never, and stays representable.
pub(crate) const MAX_DELAY: Duration = Duration::from_secs(100 * 365 * 24 * 60 * 60);

/// Names one timer. It goes stale when the timer fires for the last time or
/// is cancelled, and a stale id never reaches a timer set later in the same
/// slot: [`cancel_timer`](super::Context::cancel_timer) with it returns
/// `false`.
///
/// ```
/// use std::time::Duration;
/// use tripoll::reactor::Reactor;
///
/// let mut reactor = Reactor::new()?;
/// let id = reactor.set_timer(Duration::from_secs(60), |_, _| Ok(()))?;
/// assert!(reactor.timer_pending(id));
/// assert!(reactor.cancel_timer(id)); // dropped without running
/// assert!(!reactor.cancel_timer(id)); // the id is stale now
/// # Ok::<(), tripoll::reactor::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TimerId {
    index: u32,
    generation: u32,
}

/// What runs when a timer fires.
pub(crate) enum Callback {
    /// A one-shot timer.
    Once(TimerFn),
    /// A repeating timer and its period.
    Repeat(RepeatFn, Duration),
}

struct Timer {
    /// Out of the slot while a repeating timer's callback runs.
    callback: Option<Callback>,
    /// An entry for this generation is in the heap.
    scheduled: bool,
}

/// A heap entry; ordered by deadline, then by the order timers were set.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Entry {
    deadline: Instant,
    seq: u64,
    index: u32,
    generation: u32,
}

/// A timer that is due, taken out of the queue to be run.
pub(crate) struct Due {
    pub(crate) id: TimerId,
    pub(crate) deadline: Instant,
    pub(crate) callback: Callback,
}

pub(crate) struct Timers {
    slab: Slab<Timer>,
    heap: BinaryHeap<Reverse<Entry>>,
    /// Heap entries whose timer was cancelled.
    dead: usize,
    next_seq: u64,
}

impl Default for Timers {
    fn default() -> Timers {
        Timers::new()
    }
}

impl Timers {
    pub(crate) fn new() -> Timers {
        Timers {
            slab: Slab::new(u32::MAX, u32::MAX),
            heap: BinaryHeap::new(),
            dead: 0,
            next_seq: 0,
        }
    }

    /// How many timers are pending (a repeating timer whose callback is
    /// running counts).
    pub(crate) fn len(&self) -> usize {
        self.slab.len()
    }

    /// How many entries the heap holds, dead ones included.
    #[cfg(test)]
    fn heap_len(&self) -> usize {
        self.heap.len()
    }

    /// Sets a timer; `None` (dropping the callback) when every one of the
    /// 2³² slots is taken.
    pub(crate) fn insert(&mut self, deadline: Instant, callback: Callback) -> Option<TimerId> {
        let timer = Timer {
            callback: Some(callback),
            scheduled: true,
        };
        let (index, generation) = self.slab.insert(timer).ok()?;
        self.push(deadline, index, generation);
        Some(TimerId { index, generation })
    }

    fn push(&mut self, deadline: Instant, index: u32, generation: u32) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.heap.push(Reverse(Entry {
            deadline,
            seq,
            index,
            generation,
        }));
    }

    /// Cancels a pending timer and gives back its callback, so that the
    /// caller drops it after the bookkeeping is done. `None` if `id` is
    /// stale; `Some(None)` for a repeating timer cancelled from its own
    /// callback.
    pub(crate) fn cancel(&mut self, id: TimerId) -> Option<Option<Callback>> {
        let timer = self.slab.remove(id.index, id.generation)?;
        if timer.scheduled {
            self.dead += 1;
            if self.dead * 2 > self.heap.len() {
                self.compact();
            }
        }
        Some(timer.callback)
    }

    /// Whether `id` names a pending timer.
    pub(crate) fn contains(&self, id: TimerId) -> bool {
        self.slab.get(id.index, id.generation).is_some()
    }

    fn is_live(&self, e: &Entry) -> bool {
        self.slab.get(e.index, e.generation).is_some()
    }

    fn compact(&mut self) {
        let slab = &self.slab;
        self.heap
            .retain(|Reverse(e)| slab.get(e.index, e.generation).is_some());
        self.dead = 0;
        let len = self.heap.len();
        if self.heap.capacity() > 64 && self.heap.capacity() > 4 * len {
            self.heap.shrink_to(2 * len);
        }
    }

    /// Drops dead entries from the top of the heap.
    #[inline]
    fn prune(&mut self) {
        while let Some(Reverse(top)) = self.heap.peek() {
            if self.is_live(top) {
                return;
            }
            self.heap.pop();
            self.dead = self.dead.saturating_sub(1);
        }
    }

    /// The earliest pending deadline.
    #[inline]
    pub(crate) fn next_deadline(&mut self) -> Option<Instant> {
        self.prune();
        self.heap.peek().map(|Reverse(e)| e.deadline)
    }

    /// A mark such that timers set from now on are not [`pop_due`] in the
    /// same round: a callback that sets a zero-delay timer cannot keep one
    /// round of timers going for ever.
    ///
    /// [`pop_due`]: Timers::pop_due
    pub(crate) fn round_mark(&self) -> u64 {
        self.next_seq
    }

    /// Takes out the earliest timer whose deadline is at or before `now`
    /// and which was scheduled before `mark`. A one-shot timer leaves the
    /// queue for good; a repeating one keeps its slot until [`restore`].
    ///
    /// [`restore`]: Timers::restore
    pub(crate) fn pop_due(&mut self, now: Instant, mark: u64) -> Option<Due> {
        loop {
            self.prune();
            let Reverse(top) = self.heap.peek()?;
            if top.deadline > now || top.seq >= mark {
                return None;
            }
            let Reverse(entry) = self.heap.pop()?;
            let id = TimerId {
                index: entry.index,
                generation: entry.generation,
            };
            let Some(timer) = self.slab.get_mut(id.index, id.generation) else {
                continue;
            };
            timer.scheduled = false;
            let callback = match timer.callback.take() {
                Some(Callback::Once(f)) => {
                    self.slab.remove(id.index, id.generation);
                    Callback::Once(f)
                }
                Some(repeat) => repeat,
                None => continue,
            };
            return Some(Due {
                id,
                deadline: entry.deadline,
                callback,
            });
        }
    }

    /// Puts a repeating timer's callback back after it ran and schedules
    /// its next tick, unless the timer was cancelled meanwhile: then the
    /// callback is given back for the caller to drop.
    pub(crate) fn restore(
        &mut self,
        id: TimerId,
        f: RepeatFn,
        period: Duration,
        fired: Instant,
        now: Instant,
    ) -> Option<RepeatFn> {
        let Some(timer) = self.slab.get_mut(id.index, id.generation) else {
            return Some(f);
        };
        timer.callback = Some(Callback::Repeat(f, period));
        timer.scheduled = true;
        self.push(next_tick(fired, period, now), id.index, id.generation);
        None
    }

    /// Empties the queue, handing each callback to `drop_one`.
    pub(crate) fn clear(&mut self, mut drop_one: impl FnMut(TimerId, Option<Callback>)) {
        self.heap.clear();
        self.dead = 0;
        let keys: Vec<(u32, u32)> = self.slab.keys().collect();
        for (index, generation) in keys {
            if let Some(t) = self.slab.remove(index, generation) {
                drop_one(TimerId { index, generation }, t.callback);
            }
        }
    }
}

impl Context {
    /// Runs every timer due now. Timers set by these callbacks wait for the
    /// next turn, even with a zero delay. A callback that fails is
    /// cancelled and reported. Returns how many callbacks ran.
    #[inline]
    pub(crate) fn fire_timers(&mut self) -> usize {
        if self.timers.len() == 0 {
            return 0;
        }
        self.fire_due_timers()
    }

    fn fire_due_timers(&mut self) -> usize {
        let now = Instant::now();
        let mark = self.timers.round_mark();
        let mut ran = 0;
        while let Some(due) = self.timers.pop_due(now, mark) {
            ran += 1;
            let id = due.id;
            let origin = Origin::Timer(id);
            match due.callback {
                // Consumed by the call: what it owns is dropped inside it.
                Callback::Once(f) => {
                    if let Err(failure) = guarded(origin, || f(self, id)) {
                        self.fail(failure);
                    }
                }
                Callback::Repeat(mut f, period) => match guarded(origin, || f(self, id)) {
                    Ok(()) => {
                        let cancelled = self.timers.restore(id, f, period, due.deadline, now);
                        self.drop_guarded(origin, cancelled);
                    }
                    Err(failure) => {
                        self.fail(failure);
                        let callback = self.timers.cancel(id);
                        self.drop_guarded(origin, callback);
                        self.drop_guarded(origin, f);
                    }
                },
            }
        }
        ran
    }
}

/// The deadline after a repeating timer that was due at `fired` ran at
/// `now`: one period later, keeping the phase; ticks missed while the loop
/// was busy are skipped, not replayed in a burst.
pub(crate) fn next_tick(fired: Instant, period: Duration, now: Instant) -> Instant {
    let far = || now.checked_add(MAX_DELAY).unwrap_or(now);
    let Some(next) = fired.checked_add(period) else {
        return far();
    };
    if next > now {
        return next;
    }
    let behind = now.saturating_duration_since(fired).as_nanos();
    let p = period.as_nanos().max(1);
    let ticks = behind / p + 1;
    u64::try_from(ticks * p)
        .ok()
        .and_then(|n| fired.checked_add(Duration::from_nanos(n)))
        .unwrap_or_else(far)
}

/// `now + delay`, with the delay clamped to [`MAX_DELAY`].
pub(crate) fn deadline_after(now: Instant, delay: Duration) -> Instant {
    now.checked_add(delay.min(MAX_DELAY)).unwrap_or(now)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn once() -> Callback {
        Callback::Once(Box::new(|_, _| Ok(())))
    }

    #[test]
    fn cancelled_entries_are_compacted() {
        let mut t: Timers = Timers::new();
        let now = Instant::now();
        let ids: Vec<TimerId> = (0..100_000u64)
            .map(|i| {
                let at = now + Duration::from_secs(1 + i % 1000);
                t.insert(at, once()).unwrap()
            })
            .collect();
        assert_eq!(t.heap_len(), 100_000);
        for id in &ids {
            assert!(t.cancel(*id).is_some());
            assert!(
                t.heap_len() <= 2 * t.len() + 1,
                "dead entries pile up: heap {} for {} live",
                t.heap_len(),
                t.len()
            );
        }
        assert_eq!(t.len(), 0);
        assert_eq!(t.heap_len(), 0);
        assert_eq!(t.next_deadline(), None);
        assert!(t.cancel(ids[0]).is_none(), "a stale id cancels nothing");
    }

    #[test]
    fn due_timers_come_out_in_deadline_then_set_order() {
        let mut t: Timers = Timers::new();
        let now = Instant::now();
        let late = t.insert(now + Duration::from_secs(2), once()).unwrap();
        let a = t.insert(now, once()).unwrap();
        let b = t.insert(now, once()).unwrap();
        let future = t.insert(now + Duration::from_secs(60), once()).unwrap();
        assert!(t.cancel(late).is_some());
        let mark = t.round_mark();
        let later = now + Duration::from_secs(3);
        assert_eq!(t.pop_due(later, mark).map(|d| d.id), Some(a));
        assert_eq!(t.pop_due(later, mark).map(|d| d.id), Some(b));
        assert!(t.pop_due(later, mark).is_none());
        assert!(t.contains(future));
        assert!(!t.contains(a), "a one-shot timer is gone once taken");
        assert_eq!(t.next_deadline(), Some(now + Duration::from_secs(60)));
    }

    #[test]
    fn timers_set_during_a_round_wait_for_the_next() {
        let mut t: Timers = Timers::new();
        let now = Instant::now();
        let mark = t.round_mark();
        t.insert(now, once()).unwrap();
        assert!(t.pop_due(now, mark).is_none());
        assert!(t.pop_due(now, t.round_mark()).is_some());
    }

    #[test]
    fn next_tick_keeps_the_phase_and_skips_missed_ticks() {
        let t0 = Instant::now();
        let p = Duration::from_millis(10);
        assert_eq!(next_tick(t0, p, t0), t0 + p);
        assert_eq!(next_tick(t0, p, t0 + Duration::from_millis(3)), t0 + p);
        assert_eq!(
            next_tick(t0, p, t0 + Duration::from_millis(35)),
            t0 + Duration::from_millis(40)
        );
        assert_eq!(next_tick(t0, p, t0 + p), t0 + 2 * p);
    }
}
