//! Child processes as reactor sources: [`Context::on_child_exit`] over a
//! [`ChildExit`], which the reactor owns until the child is reaped.

use std::io;
use std::process::ExitStatus;

use super::{Context, Reactor, Result};
use crate::source::ChildExit;
use crate::{Interest, Mode, Poller, Token};

impl Context {
    /// Calls `handler` once, with the child's pid and exit status, when the
    /// child that `child` watches exits; the child is reaped (no zombie is
    /// left) and the source unregistered before the handler runs. Make the
    /// [`ChildExit`] from a pid ([`ChildExit::new`]) or from a
    /// [`std::process::Child`] ([`ChildExit::from_child`]). The returned
    /// token unregisters it (the child is then not reaped) with
    /// [`unregister`](Context::unregister).
    ///
    /// ```
    /// use std::process::Command;
    /// use tripoll::reactor::Reactor;
    /// use tripoll::source::ChildExit;
    ///
    /// let mut reactor = Reactor::new()?;
    /// let child = Command::new("sh").args(["-c", "exit 4"]).spawn()?;
    /// reactor.on_child_exit(ChildExit::from_child(&child)?, move |ctx, pid, status| {
    ///     assert_eq!(status.code(), Some(4));
    ///     println!("child {pid} is done");
    ///     ctx.stop();
    ///     Ok(())
    /// })?;
    /// reactor.run()?;
    /// assert_eq!(reactor.source_count(), 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`register_owned`](Context::register_owned); `child` is dropped
    /// then. A failure to reap the child later (someone else reaped it:
    /// [`crate::Error::NotAChild`]) is the source's failure, reported to
    /// the error handler.
    pub fn on_child_exit<F>(&mut self, child: ChildExit, handler: F) -> Result<Token>
    where
        F: FnOnce(&mut Context, libc::pid_t, ExitStatus) -> io::Result<()> + 'static,
    {
        let mut handler = Some(handler);
        self.register_owned(
            child,
            Interest::READABLE,
            Mode::Level,
            move |ctx, child: &mut ChildExit, event| {
                // A spurious wake-up leaves it running: wait on.
                let Some(status) = child.try_wait()? else {
                    return Ok(());
                };
                ctx.unregister(event.token())?;
                match handler.take() {
                    Some(handler) => handler(ctx, child.pid(), status),
                    None => Ok(()),
                }
            },
        )
    }
}

impl<P: Poller + 'static> Reactor<P> {
    /// See [`Context::on_child_exit`].
    ///
    /// ```
    /// use std::cell::Cell;
    /// use std::os::unix::process::ExitStatusExt;
    /// use std::process::Command;
    /// use std::rc::Rc;
    /// use tripoll::reactor::Reactor;
    /// use tripoll::source::ChildExit;
    ///
    /// let mut reactor = Reactor::new()?;
    /// let child = Command::new("sleep").arg("60").spawn()?;
    /// let killed = Rc::new(Cell::new(false));
    /// let seen = Rc::clone(&killed);
    /// reactor.on_child_exit(ChildExit::new(child.id() as i32)?, move |ctx, _pid, status| {
    ///     seen.set(status.signal() == Some(libc::SIGTERM));
    ///     ctx.stop();
    ///     Ok(())
    /// })?;
    /// let pid = child.id().to_string();
    /// Command::new("kill").args(["-TERM", &pid]).status()?;
    /// reactor.run()?;
    /// assert!(killed.get());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`Context::on_child_exit`].
    pub fn on_child_exit<F>(&mut self, child: ChildExit, handler: F) -> Result<Token>
    where
        F: FnOnce(&mut Context, libc::pid_t, ExitStatus) -> io::Result<()> + 'static,
    {
        self.context_mut().on_child_exit(child, handler)
    }
}
