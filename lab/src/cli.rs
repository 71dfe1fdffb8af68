//! What the lab's programs share: a small argument parser with clear errors
//! (usage on `--help`, exit status 2 and one line on a bad flag or value),
//! SIGINT/SIGTERM as a `tripoll::source::Signals` source, and the socket
//! plumbing of the servers and the client (`send` without SIGPIPE, the
//! spare descriptor for `EMFILE`).

use std::io;
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::os::fd::{OwnedFd, RawFd};
use std::process;
use std::time::{Duration, Instant};

use tripoll::source::{SignalInfo, Signals};
use tripoll::{AnyPoller, Backend};

/// Exit status for a command line that cannot be understood.
pub const USAGE_ERROR: i32 = 2;

/// Walks the command line: `--name value`, `--name=value` and bare flags.
/// Every error names the option, shows the bad value and points at `--help`.
pub struct Args {
    prog: &'static str,
    usage: &'static str,
    rest: std::vec::IntoIter<String>,
    /// The value of the last `--name=value` flag, not yet taken.
    inline: Option<String>,
}

impl Args {
    /// The process's own arguments, program name skipped.
    pub fn from_env(prog: &'static str, usage: &'static str) -> Args {
        let mut all = Vec::new();
        for a in std::env::args_os().skip(1) {
            match a.into_string() {
                Ok(s) => all.push(s),
                Err(bad) => fail(prog, &format!("argument {bad:?} is not valid UTF-8")),
            }
        }
        Args {
            prog,
            usage,
            rest: all.into_iter(),
            inline: None,
        }
    }

    /// The next option name (`--name` or a one-letter `-n`), or `None` at
    /// the end. Positional arguments are refused: every program takes
    /// options only.
    pub fn next_flag(&mut self) -> Option<String> {
        if let Some(v) = self.inline.take() {
            self.fail(&format!("unexpected value {v:?}: this option takes none"));
        }
        let arg = self.rest.next()?;
        let short = arg.len() == 2 && arg.starts_with('-') && arg != "--";
        if !arg.starts_with("--") && !short {
            self.fail(&format!("unexpected argument {arg:?}"));
        }
        match arg.split_once('=') {
            Some((name, value)) => {
                self.inline = Some(value.to_owned());
                Some(name.to_owned())
            }
            None => Some(arg),
        }
    }

    /// The value of option `flag`, parsed by `parse`; exits with a usage
    /// error if it is missing or does not parse.
    pub fn value<T, E: std::fmt::Display>(
        &mut self,
        flag: &str,
        parse: impl FnOnce(&str) -> Result<T, E>,
    ) -> T {
        let raw = match self.inline.take().or_else(|| self.rest.next()) {
            Some(v) => v,
            None => self.fail(&format!("{flag} needs a value")),
        };
        match parse(&raw) {
            Ok(v) => v,
            Err(why) => self.fail(&format!("invalid value {raw:?} for {flag}: {why}")),
        }
    }

    /// Prints the usage text and exits 0.
    pub fn help(&self) -> ! {
        print!("{}", self.usage);
        process::exit(0)
    }

    /// Exits with a usage error naming an unknown option.
    pub fn unknown(&self, flag: &str) -> ! {
        self.fail(&format!("unknown option {flag}"))
    }

    /// Exits with a usage error.
    pub fn fail(&self, msg: &str) -> ! {
        fail(self.prog, msg)
    }
}

/// Prints one line, `prog: error: msg (try 'prog --help')`, then exits 2.
pub fn fail(prog: &str, msg: &str) -> ! {
    eprintln!("{prog}: error: {msg} (try '{prog} --help')");
    process::exit(USAGE_ERROR)
}

/// Prints `prog: error: msg` and exits 1: the command line was fine, the
/// run was not.
pub fn die(prog: &str, msg: impl std::fmt::Display) -> ! {
    eprintln!("{prog}: error: {msg}");
    process::exit(1)
}

pub fn parse_backend(s: &str) -> Result<Backend, String> {
    s.parse::<Backend>()
        .map_err(|_| "expected one of epoll, poll, select, uring".to_owned())
}

/// The poller `--backend` asked for, or the one `TRIPOLL_BACKEND` names.
pub fn new_poller(backend: Option<Backend>) -> tripoll::Result<AnyPoller> {
    match backend {
        Some(b) => AnyPoller::new(b),
        None => AnyPoller::from_env(),
    }
}

/// [`new_poller`], or exit 1 saying why it could not be made.
pub fn make_poller(prog: &str, backend: Option<Backend>) -> AnyPoller {
    new_poller(backend).unwrap_or_else(|e| die(prog, format!("cannot create the poller: {e}")))
}

/// A count from the command line as a `usize`, saturating (on 32-bit
/// targets a `u64` may not fit).
pub fn to_usize(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

pub fn parse_port(s: &str) -> Result<u16, String> {
    s.parse::<u16>()
        .map_err(|_| "expected a port number from 0 to 65535".to_owned())
}

pub fn parse_addr(s: &str) -> Result<IpAddr, String> {
    s.parse::<IpAddr>()
        .map_err(|_| "expected an IP address such as 127.0.0.1 or ::1".to_owned())
}

/// A count with an inclusive lower bound.
pub fn parse_count(min: u64) -> impl Fn(&str) -> Result<u64, String> {
    move |s| match s.parse::<u64>() {
        Ok(n) if n >= min => Ok(n),
        Ok(_) => Err(format!("must be at least {min}")),
        Err(_) => Err("expected a whole number".to_owned()),
    }
}

/// A byte size: a whole number with an optional `K`, `M` or `G` suffix
/// (binary units: `1M` is 1 MiB).
pub fn parse_size(min: u64) -> impl Fn(&str) -> Result<u64, String> {
    move |s| {
        let (digits, unit) = match s.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
            Some((i, _)) => s.split_at(i),
            None => (s, ""),
        };
        let mult: u64 = match unit.to_ascii_lowercase().trim_end_matches("ib") {
            "" | "b" => 1,
            "k" => 1 << 10,
            "m" => 1 << 20,
            "g" => 1 << 30,
            _ => return Err("expected a number of bytes, optionally with K, M or G".to_owned()),
        };
        let n = digits
            .parse::<u64>()
            .ok()
            .and_then(|n| n.checked_mul(mult))
            .ok_or_else(|| "expected a number of bytes, optionally with K, M or G".to_owned())?;
        if n < min {
            return Err(format!("must be at least {min} bytes"));
        }
        Ok(n)
    }
}

/// The shortest duration a flag takes: durations are counted in whole
/// milliseconds (the coarsest resolution among the backends' timeouts).
pub const MIN_DURATION: Duration = Duration::from_millis(1);
/// The longest duration a flag takes. Longer ones are refused rather than
/// clamped: a deadline that far away is a typo, and `Instant + Duration`
/// must not overflow.
pub const MAX_DURATION: Duration = Duration::from_secs(365 * 24 * 60 * 60);

/// Why a duration on the command line was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DurationError {
    /// Not a number with an optional `ms`, `s` or `m` suffix.
    Malformed,
    /// Zero, negative, or not finite.
    NotPositive,
    /// Positive, but zero once rounded to whole milliseconds.
    TooShort,
    /// Longer than [`MAX_DURATION`].
    TooLong,
}

impl std::fmt::Display for DurationError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DurationError::Malformed => {
                f.write_str("expected a duration such as 10, 10s, 500ms or 2m")
            }
            DurationError::NotPositive => f.write_str("must be a positive duration"),
            DurationError::TooShort => f.write_str("must be at least 1ms"),
            DurationError::TooLong => f.write_str("must be at most 365 days"),
        }
    }
}

/// A duration: a number with an optional `ms`, `s` (the default) or `m`
/// suffix, rounded to the nearest millisecond, from [`MIN_DURATION`] to
/// [`MAX_DURATION`]. Every duration flag of every program goes through here.
pub fn parse_duration(s: &str) -> Result<Duration, DurationError> {
    let (num, ms_per_unit) = if let Some(n) = s.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1e3)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60e3)
    } else {
        (s, 1e3)
    };
    let v: f64 = num.parse().map_err(|_| DurationError::Malformed)?;
    if !v.is_finite() || v <= 0.0 {
        return Err(DurationError::NotPositive);
    }
    let ms = (v * ms_per_unit).round();
    if ms < 1.0 {
        return Err(DurationError::TooShort);
    }
    if ms > MAX_DURATION.as_millis() as f64 {
        return Err(DurationError::TooLong);
    }
    // In range: 1 ..= 3.2e10, exact in both f64 and u64.
    Ok(Duration::from_millis(ms as u64))
}

/// A positive rate, per second.
pub fn parse_rate(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err("expected a positive number per second".to_owned()),
    }
}

/// A comma-separated list of counts, each at least `min`.
pub fn parse_list(min: u64) -> impl Fn(&str) -> Result<Vec<u64>, String> {
    move |s| {
        let items: Result<Vec<u64>, String> = s
            .split(',')
            .map(|part| parse_count(min)(part.trim()).map_err(|e| format!("{part:?}: {e}")))
            .collect();
        let items = items?;
        if items.is_empty() {
            return Err("expected a comma-separated list".to_owned());
        }
        Ok(items)
    }
}

/// `send(2)` with `MSG_NOSIGNAL`: a peer that has gone away yields `EPIPE`
/// instead of killing the process with SIGPIPE.
pub fn send_nosignal(fd: RawFd, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: `buf` is valid for reads of `buf.len()` bytes for the whole call.
    let n = unsafe { libc::send(fd, buf.as_ptr().cast(), buf.len(), libc::MSG_NOSIGNAL) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// Sends `out[*sent..]` until all of it is sent or the socket is full
/// (`WouldBlock`), moving `*sent` on by what the socket takes.
pub fn send_pending(fd: RawFd, out: &[u8], sent: &mut usize) -> io::Result<()> {
    while *sent < out.len() {
        match send_nosignal(fd, &out[*sent..]) {
            Ok(n) => *sent += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// A new non-blocking, close-on-exec TCP socket of `addr`'s family, for
/// the options std cannot set before `bind` or a `connect` that must not
/// block.
pub fn tcp_socket(addr: SocketAddr) -> io::Result<socket2::Socket> {
    let s = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        None,
    )?;
    s.set_nonblocking(true)?;
    Ok(s)
}

/// `accept` failed because the process (`EMFILE`) or the system
/// (`ENFILE`) is out of descriptors.
pub fn is_fd_exhaustion(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE))
}

/// `accept` failed for one connection only (it died in the backlog, or a
/// transient error): the next one may work.
pub fn is_per_connection(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ECONNABORTED | libc::EPROTO | libc::EPERM | libc::EINTR | libc::ETIMEDOUT)
    )
}

/// A descriptor kept open to be given up when `accept` runs out of
/// descriptors. A connection left in the backlog would keep the listener
/// readable and a level-triggered loop would spin; with the spare freed it
/// can be accepted and closed at once.
///
/// Threads share one descriptor table, so the number a thread frees can be
/// taken by another thread's `accept` before its own `accept` or the reopen
/// gets it. Then this thread has no spare and the listener is still
/// readable: [`Shed::Pause`] tells the caller to stop watching the listener
/// for [`ACCEPT_PAUSE`] instead of spinning. Each later call first tries to
/// take a spare back ([`Spare::recover`]), so the spare is not lost for good.
pub struct Spare(Option<OwnedFd>);

/// How long a server stops watching a listener when it is out of
/// descriptors and has no spare to shed with. Connections wait in the
/// backlog meanwhile; short enough that they are served soon after
/// descriptors free up, long enough that a paused loop costs nothing.
pub const ACCEPT_PAUSE: Duration = Duration::from_millis(50);

/// What [`Spare::shed`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shed {
    /// One connection was accepted and closed at once; accepting may go on.
    Refused,
    /// The backlog is empty: stop accepting until the next report.
    Empty,
    /// Out of descriptors with no spare to shed with (another thread took
    /// the number): stop watching the listener for [`ACCEPT_PAUSE`].
    Pause,
}

impl Spare {
    pub fn new() -> io::Result<Spare> {
        Ok(Spare(Some(open_spare()?)))
    }

    /// Whether the spare is held, reopening it first if it was lost.
    pub fn recover(&mut self) -> bool {
        if self.0.is_none() {
            self.0 = open_spare().ok();
        }
        self.0.is_some()
    }

    /// Frees the spare (closes it), for a server that accepts by other
    /// means than [`Spare::shed`] (an accept handed to io_uring); take it
    /// back with [`Spare::recover`].
    pub fn release(&mut self) {
        self.0 = None;
    }

    /// Out of descriptors: frees the spare, accepts one connection from
    /// `listener` and closes it (calling `refused`), and takes the spare
    /// back. Says whether accepting may go on (see [`Shed`]).
    pub fn shed(&mut self, listener: &TcpListener, refused: impl FnOnce()) -> Shed {
        if !self.recover() {
            return Shed::Pause;
        }
        self.0 = None; // closes it: one descriptor free for the accept
        let outcome = match listener.accept() {
            Ok((stream, _)) => {
                drop(stream);
                refused();
                Shed::Refused
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Shed::Empty,
            // Another thread took the freed number first.
            Err(e) if is_fd_exhaustion(&e) => Shed::Pause,
            // That connection died in the backlog: the next may work.
            Err(e) if is_per_connection(&e) => Shed::Refused,
            Err(_) => Shed::Empty,
        };
        if !self.recover() {
            return Shed::Pause;
        }
        outcome
    }
}

/// At most one line per `every` for one kind of recurring trouble (out of
/// descriptors, over the memory budget), with the count of the occurrences
/// not printed since the last line: a server under pressure tells what
/// happens without flooding its log.
pub struct LogLimit {
    every: Duration,
    last: Option<Instant>,
    suppressed: u64,
}

impl LogLimit {
    pub const fn new(every: Duration) -> LogLimit {
        LogLimit {
            every,
            last: None,
            suppressed: 0,
        }
    }

    /// Prints `prog: msg` unless a line was printed less than `every` ago,
    /// in which case it is only counted.
    pub fn note(&mut self, prog: &str, msg: impl std::fmt::Display) {
        let now = Instant::now();
        if let Some(last) = self.last {
            if now.duration_since(last) < self.every {
                self.suppressed += 1;
                return;
            }
        }
        if self.suppressed > 0 {
            eprintln!(
                "{prog}: {msg} ({} more since the last report)",
                self.suppressed
            );
        } else {
            eprintln!("{prog}: {msg}");
        }
        self.last = Some(now);
        self.suppressed = 0;
    }
}

fn open_spare() -> io::Result<OwnedFd> {
    Ok(std::fs::File::open("/dev/null")?.into())
}

/// The signals that end a server, blocked in the calling thread (call this
/// before starting threads, which inherit the mask) and delivered as
/// events on a [`Signals`] source, so the event loop hears them like any
/// other descriptor.
pub fn shutdown_signals() -> tripoll::Result<Signals> {
    Signals::new(&[libc::SIGINT, libc::SIGTERM])
}

/// The name of a signal that ends a server, for its summary line.
pub fn signal_name(info: &SignalInfo) -> &'static str {
    match info.signal {
        libc::SIGINT => "SIGINT",
        libc::SIGTERM => "SIGTERM",
        _ => "a signal",
    }
}

/// Formats a count of bytes with a binary unit.
pub fn human_bytes(n: f64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{v:.0} {}", UNITS[u])
    } else {
        format!("{v:.2} {}", UNITS[u])
    }
}

/// Formats a duration given in nanoseconds with a fitting unit.
pub fn human_nanos(ns: f64) -> String {
    if ns < 1_000.0 {
        format!("{ns:.0} ns")
    } else if ns < 1_000_000.0 {
        format!("{:.2} µs", ns / 1_000.0)
    } else if ns < 1_000_000_000.0 {
        format!("{:.2} ms", ns / 1_000_000.0)
    } else {
        format!("{:.2} s", ns / 1_000_000_000.0)
    }
}

/// Raises the soft `RLIMIT_NOFILE` to at least `wanted` (through the
/// `rlimit` crate), raising the hard limit too where the process may (root,
/// `CAP_SYS_RESOURCE`); returns the soft limit now in force, lower than
/// `wanted` when the hard limit could not be raised.
pub fn raise_fd_limit(wanted: u64) -> io::Result<u64> {
    use rlimit::Resource;
    let (soft, hard) = Resource::NOFILE.get()?;
    if soft >= wanted {
        return Ok(soft);
    }
    if hard < wanted && Resource::NOFILE.set(wanted, wanted).is_ok() {
        return Ok(wanted);
    }
    rlimit::increase_nofile_limit(wanted)
}

/// Sets the descriptor limit asked for with `--max-fds` (soft and, where
/// allowed, hard), exiting with a clear message when the process may not;
/// without `--max-fds`, raises it as far as the process may.
pub fn set_fd_limit(prog: &str, wanted: Option<u64>) {
    let Some(n) = wanted else {
        // Best effort: a server with a low limit still works, it sheds
        // connections sooner.
        let _ = raise_fd_limit(1 << 16);
        return;
    };
    let hard = rlimit::Resource::NOFILE.get().map_or(0, |(_, hard)| hard);
    if let Err(e) = rlimit::Resource::NOFILE.set(n, n.max(hard)) {
        die(prog, format!("cannot set the descriptor limit to {n}: {e}"));
    }
}
