//! The executor: tasks in a slab, a queue of woken ones shared with their
//! wakers, and the loop that alternates polling them with reactor turns.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::future::Future;
use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::rc::{Rc, Weak};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context as TaskContext, Poll, Wake, Waker};
use std::time::Duration;

use super::{enter, refill_budget};
use crate::reactor::{Handle, Reactor};
use crate::Poller;

/// The id of the future given to `block_on`, in the ready queue.
const MAIN: usize = usize::MAX;

type LocalTask = Pin<Box<dyn Future<Output = ()>>>;

/// Woken task ids, shared with the wakers (which may be on any thread).
struct Queue {
    ready: Mutex<Vec<usize>>,
    /// `ready` may be non-empty: lets the loop skip the lock when it is not.
    pending: AtomicBool,
    /// The loop's thread: a wake from there needs no reactor wake-up, the
    /// loop looks at the queue before it waits.
    thread: usize,
    /// The reactor being driven, to wake it from other threads.
    handle: Mutex<Option<Handle>>,
}

impl Queue {
    fn ready(&self) -> MutexGuard<'_, Vec<usize>> {
        // A push or a swap cannot leave the vector half-changed.
        self.ready.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn push(&self, id: usize) {
        {
            let mut ready = self.ready();
            ready.push(id);
            self.pending.store(true, Ordering::Release);
        }
        if thread_key() != self.thread {
            let handle = self.handle.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(handle) = handle.as_ref() {
                // A reactor that is gone has no loop to wake; one that
                // cannot be woken will see the queue at its next turn.
                let _ = handle.wake();
            }
        }
    }
}

thread_local! {
    static KEY: u8 = const { 0 };
}

/// Tells this thread from the others that are alive: the address of a
/// thread-local (cheaper than `thread::current().id()` on every wake).
fn thread_key() -> usize {
    KEY.try_with(|k| k as *const u8 as usize).unwrap_or(0)
}

/// A task's waker: queues the task's id once until it is polled.
struct TaskWaker {
    id: usize,
    queued: AtomicBool,
    queue: Arc<Queue>,
}

impl Wake for TaskWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if !self.queued.swap(true, Ordering::AcqRel) {
            self.queue.push(self.id);
        }
    }
}

struct Slot {
    /// Out of the slot while it is polled, so that it may spawn.
    task: Option<LocalTask>,
    waker: Arc<TaskWaker>,
}

struct Inner {
    slots: RefCell<Vec<Option<Slot>>>,
    free: RefCell<Vec<usize>>,
    live: Cell<usize>,
    queue: Arc<Queue>,
    stop: Cell<bool>,
    /// The executor is being dropped: spawning is refused.
    closed: Cell<bool>,
}

/// A single-threaded executor for tasks that need not be `Send`, driven by
/// a [`Reactor`] you pass to [`run`](Executor::run) or
/// [`block_on`](Executor::block_on).
///
/// Tasks spawn more tasks through a [`Spawner`] (cheap to clone, and it
/// does not keep the executor alive, so a task holding one makes no
/// cycle). Tasks not finished when a `run` or `block_on` returns stay,
/// and go on at the next one; dropping the executor drops them (an
/// [`Async`](super::Async) they own is then unregistered at the reactor's
/// next turn, see the [module docs](super#how-it-sits-on-the-reactor)).
///
/// A task that panics is dropped (its [`JoinHandle`] yields `None`); the
/// others go on. The future given to `block_on` is not a task: its panic
/// comes out of `block_on`.
///
/// ```
/// use std::net::{TcpListener, TcpStream};
/// use tripoll::reactor::Reactor;
/// use tripoll::task::{Async, Executor};
///
/// let mut reactor = Reactor::new()?;
/// let ex = Executor::new();
/// // A server's shape: a task per connection, spawned by an accept task.
/// let listener = ex.block_on(&mut reactor, async { Async::<TcpListener>::bind(([127, 0, 0, 1], 0)) })??;
/// let addr = listener.get_ref().local_addr()?;
/// let spawner = ex.spawner();
/// ex.spawn(async move {
///     let (conn, _) = listener.accept().await.expect("accept");
///     spawner.spawn(async move {
///         let mut buf = [0; 4];
///         conn.read_exact(&mut buf).await.expect("read");
///         conn.write_all(&buf).await.expect("echo");
///     });
/// });
/// let reply = ex.block_on(&mut reactor, async move {
///     let client = Async::<TcpStream>::connect(addr).await?;
///     client.write_all(b"ping").await?;
///     let mut buf = [0; 4];
///     client.read_exact(&mut buf).await?;
///     Ok::<_, std::io::Error>(buf)
/// })??;
/// assert_eq!(&reply, b"ping");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Executor {
    inner: Rc<Inner>,
}

/// Spawns tasks on an [`Executor`] and stops it, from its tasks; see
/// [`Executor::spawner`]. Once the executor is dropped, a spawned future is
/// dropped at once (its [`JoinHandle`] yields `None`).
///
/// ```
/// use tripoll::reactor::Reactor;
/// use tripoll::task::Executor;
///
/// let mut reactor = Reactor::new()?;
/// let ex = Executor::new();
/// let spawner = ex.spawner(); // cheap to clone, for tasks to hold
/// let child = ex.block_on(&mut reactor, {
///     let spawner = spawner.clone();
///     async move { spawner.spawn(async { "from a task" }).await }
/// })?;
/// assert_eq!(child, Some("from a task"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Spawner {
    inner: Weak<Inner>,
}

impl Spawner {
    /// As [`Executor::spawn`].
    ///
    /// ```
    /// use tripoll::reactor::Reactor;
    /// use tripoll::task::Executor;
    ///
    /// let mut reactor = Reactor::new()?;
    /// let ex = Executor::new();
    /// let spawner = ex.spawner();
    /// // A task that spawns another: the accept loop of a server does this.
    /// let outer = ex.spawn(async move {
    ///     let inner = spawner.spawn(async { 6 * 7 });
    ///     inner.await
    /// });
    /// assert_eq!(ex.block_on(&mut reactor, outer)?, Some(Some(42)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn spawn<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        match self.inner.upgrade() {
            Some(inner) => spawn_on(&inner, future),
            None => JoinHandle::dropped(),
        }
    }

    /// As [`Executor::stop`].
    ///
    /// ```
    /// use tripoll::reactor::Reactor;
    /// use tripoll::task::Executor;
    ///
    /// let mut reactor = Reactor::new()?;
    /// let ex = Executor::new();
    /// let spawner = ex.spawner();
    /// // A task that never ends, and one that stops the executor.
    /// ex.spawn(std::future::pending::<()>());
    /// ex.spawn(async move { spawner.stop() });
    /// ex.run(&mut reactor)?; // returns: stopped, not finished
    /// assert_eq!(ex.len(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn stop(&self) {
        if let Some(inner) = self.inner.upgrade() {
            inner.stop.set(true);
        }
    }
}

impl fmt::Debug for Spawner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Spawner")
            .field("executor_alive", &(self.inner.strong_count() > 0))
            .finish()
    }
}

impl Default for Executor {
    fn default() -> Executor {
        Executor::new()
    }
}

impl Executor {
    /// An executor with no tasks, for the calling thread.
    ///
    /// ```
    /// use tripoll::reactor::Reactor;
    /// use tripoll::task::Executor;
    ///
    /// let mut reactor = Reactor::new()?;
    /// let ex = Executor::new(); // tasks of this thread; they need not be `Send`
    /// let shared = std::rc::Rc::new(std::cell::Cell::new(0));
    /// let seen = shared.clone();
    /// ex.spawn(async move { seen.set(1) });
    /// ex.run(&mut reactor)?; // until no task is left
    /// assert_eq!(shared.get(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn new() -> Executor {
        Executor {
            inner: Rc::new(Inner {
                slots: RefCell::new(Vec::new()),
                free: RefCell::new(Vec::new()),
                live: Cell::new(0),
                queue: Arc::new(Queue {
                    ready: Mutex::new(Vec::new()),
                    pending: AtomicBool::new(false),
                    thread: thread_key(),
                    handle: Mutex::new(None),
                }),
                stop: Cell::new(false),
                closed: Cell::new(false),
            }),
        }
    }

    /// A spawner for this executor's tasks.
    ///
    /// ```
    /// use tripoll::reactor::Reactor;
    /// use tripoll::task::Executor;
    ///
    /// let mut reactor = Reactor::new()?;
    /// let ex = Executor::new();
    /// // Tasks cannot borrow the executor: they spawn through a spawner.
    /// let spawner = ex.spawner();
    /// ex.spawn(async move {
    ///     for i in 0..3 {
    ///         spawner.spawn(async move { i });
    ///     }
    /// });
    /// ex.run(&mut reactor)?;
    /// assert!(ex.is_empty()); // the three ran too
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn spawner(&self) -> Spawner {
        Spawner {
            inner: Rc::downgrade(&self.inner),
        }
    }

    /// Adds a task; it first runs at the next [`run`](Executor::run) or
    /// [`block_on`](Executor::block_on) (or in the one running now). The
    /// [`JoinHandle`] gives its output; dropping the handle lets the task
    /// go on, detached.
    ///
    /// ```
    /// use tripoll::reactor::Reactor;
    /// use tripoll::task::Executor;
    ///
    /// let mut reactor = Reactor::new()?;
    /// let ex = Executor::new();
    /// let a = ex.spawn(async { "a" });
    /// let b = ex.spawn(async { "b" });
    /// // Nothing has run yet; `block_on` runs them while it waits for `b`.
    /// assert!(!a.is_finished());
    /// assert_eq!(ex.block_on(&mut reactor, b)?, Some("b"));
    /// assert!(a.is_finished());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn spawn<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        spawn_on(&self.inner, future)
    }

    /// How many tasks are not finished.
    ///
    /// ```
    /// use tripoll::reactor::Reactor;
    /// use tripoll::task::Executor;
    ///
    /// let mut reactor = Reactor::new()?;
    /// let ex = Executor::new();
    /// ex.spawn(async {});
    /// ex.spawn(std::future::pending::<()>());
    /// assert_eq!(ex.len(), 2);
    /// ex.block_on(&mut reactor, async {})?; // the first one runs meanwhile
    /// assert_eq!(ex.len(), 1); // the pending one stays
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn len(&self) -> usize {
        self.inner.live.get()
    }

    /// Whether every task is finished.
    ///
    /// ```
    /// use tripoll::reactor::Reactor;
    /// use tripoll::task::Executor;
    ///
    /// let mut reactor = Reactor::new()?;
    /// let ex = Executor::new();
    /// assert!(ex.is_empty());
    /// ex.spawn(async {});
    /// assert!(!ex.is_empty());
    /// ex.run(&mut reactor)?;
    /// assert!(ex.is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Makes the `run` or `block_on` in progress return once the tasks
    /// woken so far have been polled (or the next one return at once).
    ///
    /// ```
    /// use tripoll::reactor::Reactor;
    /// use tripoll::task::Executor;
    ///
    /// let mut reactor = Reactor::new()?;
    /// let ex = Executor::new();
    /// ex.spawn(std::future::pending::<()>());
    /// ex.stop(); // asked before: the next `run` returns at once
    /// ex.run(&mut reactor)?;
    /// assert_eq!(ex.len(), 1); // the task stays for a later run
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn stop(&self) {
        self.inner.stop.set(true);
    }

    /// Runs the tasks until none is left (`Ok(())`), or until the loop is
    /// stopped: [`Executor::stop`], or a stop of the reactor
    /// ([`Context::stop`](crate::reactor::Context::stop),
    /// [`Handle::stop`]), which is consumed. Unfinished tasks stay.
    ///
    /// # Errors
    ///
    /// The poller's, as [`Reactor::run_once`] (the tasks stay).
    ///
    /// ```
    /// use std::time::Duration;
    /// use tripoll::reactor::Reactor;
    /// use tripoll::task::Executor;
    ///
    /// let mut reactor = Reactor::new()?;
    /// let ex = Executor::new();
    /// let (tx, rx) = std::sync::mpsc::channel();
    /// for i in 0..3 {
    ///     let tx = tx.clone();
    ///     ex.spawn(async move {
    ///         tripoll::task::sleep(Duration::from_millis(3 - i)).await.expect("a timer");
    ///         tx.send(i).expect("send");
    ///     });
    /// }
    /// ex.run(&mut reactor)?; // until all three are done
    /// let order: Vec<u64> = rx.try_iter().collect();
    /// assert_eq!(order, [2, 1, 0]); // the shortest sleep first
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn run<P: Poller + 'static>(&self, reactor: &mut Reactor<P>) -> io::Result<()> {
        self.drive(reactor, None::<Pin<&mut std::future::Pending<()>>>, true)
            .map(|_| ())
    }

    /// Runs `future`, and the tasks meanwhile, until `future` is done, and
    /// returns its output. Tasks left then stay for the next call.
    ///
    /// # Errors
    ///
    /// The poller's, as [`Reactor::run_once`], or `ErrorKind::Interrupted`
    /// if the loop was stopped (as for [`run`](Executor::run)) first.
    /// `future` is dropped then.
    ///
    /// ```
    /// use tripoll::reactor::Reactor;
    /// use tripoll::task::Executor;
    ///
    /// let mut reactor = Reactor::new()?;
    /// let ex = Executor::new();
    /// let background = ex.spawn(async { "done meanwhile" });
    /// let answer = ex.block_on(&mut reactor, async { 40 + 2 })?;
    /// assert_eq!(answer, 42);
    /// assert!(background.is_finished());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn block_on<P, F>(&self, reactor: &mut Reactor<P>, future: F) -> io::Result<F::Output>
    where
        P: Poller + 'static,
        F: Future,
    {
        let mut future = std::pin::pin!(future);
        match self.drive(reactor, Some(future.as_mut()), false)? {
            Some(value) => Ok(value),
            None => Err(io::Error::new(
                io::ErrorKind::Interrupted,
                "tripoll::task: the loop was stopped before the future was done",
            )),
        }
    }

    /// The loop: poll what is woken, then turn the reactor (without
    /// blocking while something is woken). `Ok(None)`: stopped, or (`until_idle`)
    /// no task left.
    fn drive<P, F>(
        &self,
        reactor: &mut Reactor<P>,
        mut main: Option<Pin<&mut F>>,
        until_idle: bool,
    ) -> io::Result<Option<F::Output>>
    where
        P: Poller + 'static,
        F: Future + ?Sized,
    {
        let inner = &self.inner;
        *inner.queue.handle.lock().unwrap_or_else(|p| p.into_inner()) = Some(reactor.handle());
        let main_waker = Arc::new(TaskWaker {
            id: MAIN,
            queued: AtomicBool::new(false),
            queue: Arc::clone(&inner.queue),
        });
        if main.is_some() {
            Waker::from(Arc::clone(&main_waker)).wake();
        }
        let main_waker_ref = Waker::from(Arc::clone(&main_waker));
        let mut woken = Vec::new();
        loop {
            if inner.queue.pending.swap(false, Ordering::AcqRel) {
                std::mem::swap(&mut woken, &mut *inner.queue.ready());
            }
            let out = enter(reactor.context_mut(), || {
                self.poll_woken(&mut woken, &mut main, &main_waker, &main_waker_ref)
            });
            if let Some(value) = out {
                return Ok(Some(value));
            }
            if until_idle && inner.live.get() == 0 {
                return Ok(None);
            }
            if inner.stop.replace(false) {
                return Ok(None);
            }
            if reactor.stop_requested() {
                reactor.run()?; // consumes the reactor's stop, and returns at once
                return Ok(None);
            }
            let timeout = if inner.queue.pending.load(Ordering::Acquire) {
                Some(Duration::ZERO)
            } else {
                None
            };
            reactor.run_once(timeout)?;
        }
    }

    /// Polls the tasks in `woken` (emptied), and the main future if it is
    /// among them; its output if it is done.
    fn poll_woken<F: Future + ?Sized>(
        &self,
        woken: &mut Vec<usize>,
        main: &mut Option<Pin<&mut F>>,
        main_waker: &Arc<TaskWaker>,
        main_waker_ref: &Waker,
    ) -> Option<F::Output> {
        let mut output = None;
        for id in woken.drain(..) {
            if id == MAIN {
                main_waker.queued.store(false, Ordering::Release);
                if let Some(future) = main.as_mut() {
                    refill_budget();
                    let mut cx = TaskContext::from_waker(main_waker_ref);
                    if let Poll::Ready(value) = future.as_mut().poll(&mut cx) {
                        *main = None;
                        output = Some(value);
                    }
                }
            } else {
                self.poll_task(id);
            }
        }
        output
    }

    fn poll_task(&self, id: usize) {
        let inner = &self.inner;
        let (mut task, waker) = {
            let mut slots = inner.slots.borrow_mut();
            let Some(Some(slot)) = slots.get_mut(id) else {
                return; // finished; a stale wake
            };
            let Some(task) = slot.task.take() else {
                return;
            };
            slot.waker.queued.store(false, Ordering::Release);
            (task, Waker::from(Arc::clone(&slot.waker)))
        };
        refill_budget();
        let mut cx = TaskContext::from_waker(&waker);
        let done = match catch_unwind(AssertUnwindSafe(|| task.as_mut().poll(&mut cx))) {
            Ok(Poll::Pending) => false,
            Ok(Poll::Ready(())) => true,
            Err(_) => true, // the panic hook has said why; the task is dropped
        };
        if !done {
            if let Some(Some(slot)) = inner.slots.borrow_mut().get_mut(id) {
                slot.task = Some(task);
            }
            return;
        }
        let slot = inner.slots.borrow_mut().get_mut(id).and_then(Option::take);
        inner.free.borrow_mut().push(id);
        inner.live.set(inner.live.get() - 1);
        // Its destructors may unregister sources (we are inside `enter`),
        // or panic: that is the task's failure, not the loop's.
        let _ = catch_unwind(AssertUnwindSafe(move || drop((task, slot))));
    }
}

/// Adds a task to `inner`; see [`Executor::spawn`].
fn spawn_on<F>(inner: &Inner, future: F) -> JoinHandle<F::Output>
where
    F: Future + 'static,
    F::Output: 'static,
{
    if inner.closed.get() {
        return JoinHandle::dropped();
    }
    let state = Rc::new(JoinState {
        value: RefCell::new(None),
        done: Cell::new(false),
        waker: RefCell::new(None),
    });
    let finish = Finish(Rc::clone(&state));
    let task: LocalTask = Box::pin(async move {
        let finish = finish;
        let value = future.await;
        *finish.0.value.borrow_mut() = Some(value);
    });
    let id = match inner.free.borrow_mut().pop() {
        Some(id) => id,
        None => {
            let mut slots = inner.slots.borrow_mut();
            slots.push(None);
            slots.len() - 1
        }
    };
    let waker = Arc::new(TaskWaker {
        id,
        queued: AtomicBool::new(false),
        queue: Arc::clone(&inner.queue),
    });
    Waker::from(Arc::clone(&waker)).wake();
    inner.slots.borrow_mut()[id] = Some(Slot {
        task: Some(task),
        waker,
    });
    inner.live.set(inner.live.get() + 1);
    JoinHandle { state }
}

impl Drop for Executor {
    /// Drops the tasks left (refusing new ones meanwhile).
    fn drop(&mut self) {
        self.inner.closed.set(true);
        let slots = std::mem::take(&mut *self.inner.slots.borrow_mut());
        for slot in slots {
            // A destructor that panics is the task's failure; the others
            // are still dropped.
            let _ = catch_unwind(AssertUnwindSafe(move || drop(slot)));
        }
    }
}

impl fmt::Debug for Executor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Executor")
            .field("tasks", &self.len())
            .finish()
    }
}

/// Runs `future` on `reactor` until it is done, and returns its output:
/// [`Executor::block_on`] on a new executor (so nothing can be spawned
/// beside it; use an [`Executor`] for that).
///
/// ```
/// use std::time::{Duration, Instant};
/// use tripoll::reactor::Reactor;
///
/// # fn main() -> std::io::Result<()> {
/// let mut reactor = Reactor::new()?;
/// let start = Instant::now();
/// tripoll::task::block_on(&mut reactor, tripoll::task::sleep(Duration::from_millis(5)))??;
/// assert!(start.elapsed() >= Duration::from_millis(5));
/// # Ok(())
/// # }
/// ```
///
/// # Errors
///
/// As [`Executor::block_on`].
pub fn block_on<P, F>(reactor: &mut Reactor<P>, future: F) -> io::Result<F::Output>
where
    P: Poller + 'static,
    F: Future,
{
    Executor::new().block_on(reactor, future)
}

struct JoinState<T> {
    value: RefCell<Option<T>>,
    done: Cell<bool>,
    waker: RefCell<Option<Waker>>,
}

/// Marks a task's end, however it ends (output, panic, drop), and wakes
/// whoever waits on its [`JoinHandle`].
struct Finish<T>(Rc<JoinState<T>>);

impl<T> Drop for Finish<T> {
    fn drop(&mut self) {
        self.0.done.set(true);
        if let Some(waker) = self.0.waker.borrow_mut().take() {
            waker.wake();
        }
    }
}

/// A future for the output of a task: `Some(output)`, or `None` if the
/// task panicked or was dropped unfinished.
///
/// ```
/// use tripoll::reactor::Reactor;
/// use tripoll::task::Executor;
///
/// let mut reactor = Reactor::new()?;
/// let ex = Executor::new();
/// let handle = ex.spawn(async { 1 + 1 });
/// // Awaiting the handle gives the output (`None` if the task was dropped).
/// assert_eq!(ex.block_on(&mut reactor, handle)?, Some(2));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct JoinHandle<T> {
    state: Rc<JoinState<T>>,
}

impl<T> JoinHandle<T> {
    /// The handle of a task that was dropped before it ran.
    fn dropped() -> JoinHandle<T> {
        JoinHandle {
            state: Rc::new(JoinState {
                value: RefCell::new(None),
                done: Cell::new(true),
                waker: RefCell::new(None),
            }),
        }
    }

    /// Whether the task has ended.
    ///
    /// ```
    /// use tripoll::reactor::Reactor;
    /// use tripoll::task::Executor;
    ///
    /// let mut reactor = Reactor::new()?;
    /// let ex = Executor::new();
    /// let quick = ex.spawn(async {});
    /// let slow = ex.spawn(std::future::pending::<()>());
    /// ex.block_on(&mut reactor, async {})?;
    /// assert!(quick.is_finished() && !slow.is_finished());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn is_finished(&self) -> bool {
        self.state.done.get()
    }
}

impl<T> Future for JoinHandle<T> {
    type Output = Option<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<T>> {
        if let Some(value) = self.state.value.borrow_mut().take() {
            return Poll::Ready(Some(value));
        }
        if self.state.done.get() {
            return Poll::Ready(None);
        }
        *self.state.waker.borrow_mut() = Some(cx.waker().clone());
        Poll::Pending
    }
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle")
            .field("finished", &self.is_finished())
            .finish()
    }
}
