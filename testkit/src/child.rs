//! Programs as child processes, for the end-to-end tests of both crates:
//! the library's teaching examples and the lab's servers, clients and
//! sweep. Each crate's tests find their own programs (the library builds
//! its examples, the lab's binaries are built by cargo before its tests)
//! and hand the path to [`Proc::spawn`].
//!
//! Every child is killed when its guard drops and every wait has a deadline:
//! a broken program fails the test, it does not hang it.

use std::ffi::OsStr;
use std::io::{self, BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// The longest a child may take to print a line or to exit.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// The binary `name` of the package whose integration test is running:
/// cargo builds a package's binaries into `target/<profile>/` before it
/// runs the package's integration tests (in `target/<profile>/deps/`).
pub fn bin(name: &str) -> PathBuf {
    let path = profile_dir().join(name);
    assert!(path.is_file(), "binary {} is missing", path.display());
    path
}

/// What [`Proc::spawn`] can start: a path to a program, or (`&str`) the
/// name of a binary of the package under test ([`bin`]).
pub trait Program {
    /// The program's path.
    fn path(&self) -> PathBuf;
}

impl Program for str {
    fn path(&self) -> PathBuf {
        bin(self)
    }
}

impl Program for Path {
    fn path(&self) -> PathBuf {
        self.to_path_buf()
    }
}

impl Program for PathBuf {
    fn path(&self) -> PathBuf {
        self.clone()
    }
}

impl<T: Program + ?Sized> Program for &T {
    fn path(&self) -> PathBuf {
        (**self).path()
    }
}

/// `target/<profile>/`, the directory above this test binary's `deps/`.
pub fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    exe.parent()
        .and_then(Path::parent)
        .expect("test binary lives in target/<profile>/deps")
        .to_path_buf()
}

/// A running program. Dropping it kills the process.
pub struct Proc {
    name: String,
    child: Child,
    lines: Receiver<String>,
    stderr: Arc<Mutex<String>>,
    readers: Vec<thread::JoinHandle<()>>,
}

/// What a finished program left behind.
pub struct Finished {
    pub status: ExitStatus,
    /// What it printed on stdout after the lines taken with [`Proc::line`].
    pub stdout: String,
    pub stderr: String,
}

impl Proc {
    /// Starts `program` with `args` and `TRIPOLL_BACKEND` unset.
    pub fn spawn(program: impl Program, args: &[&str]) -> Proc {
        Proc::spawn_env(program, args, &[])
    }

    /// Starts `program` with `args`, `TRIPOLL_BACKEND` unset and the
    /// variables `env` set.
    pub fn spawn_env(program: impl Program, args: &[&str], env: &[(&str, &str)]) -> Proc {
        let program = program.path();
        let name = program
            .file_name()
            .and_then(OsStr::to_str)
            .unwrap_or("child")
            .to_owned();
        let mut cmd = Command::new(&program);
        cmd.args(args)
            .env_remove("TRIPOLL_BACKEND")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {name}: {e}"));
        let stdout = child.stdout.take().expect("stdout");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, lines) = mpsc::channel();
        let out_reader = thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let err_buf = Arc::new(Mutex::new(String::new()));
        let sink = Arc::clone(&err_buf);
        let err_reader = thread::spawn(move || {
            let mut s = String::new();
            let _ = BufReader::new(stderr).read_to_string(&mut s);
            sink.lock().unwrap().push_str(&s);
        });
        Proc {
            name,
            child,
            lines,
            stderr: err_buf,
            readers: vec![out_reader, err_reader],
        }
    }

    /// The next line the program prints on stdout. If none comes within
    /// [`PATIENCE`], kills the program and panics with all it wrote on
    /// stderr.
    pub fn line(&mut self) -> String {
        match self.lines.recv_timeout(PATIENCE) {
            Ok(l) => l,
            Err(_) => {
                self.reap();
                self.join_readers();
                panic!(
                    "{} printed no line in time; stderr: {}",
                    self.name,
                    self.stderr.lock().unwrap()
                )
            }
        }
    }

    pub fn pid(&self) -> libc::pid_t {
        self.child.id() as libc::pid_t
    }

    pub fn signal(&self, sig: libc::c_int) {
        // SAFETY: kill(2) on our own child, which has not been reaped (its
        // guard is alive), so the pid is not reused.
        let rc = unsafe { libc::kill(self.pid(), sig) };
        assert_eq!(rc, 0, "kill: {}", io::Error::last_os_error());
    }

    /// Waits for the program to exit, up to [`PATIENCE`].
    pub fn finish(mut self) -> Finished {
        let deadline = Instant::now() + PATIENCE;
        let status = loop {
            if let Some(st) = self.child.try_wait().expect("try_wait") {
                break st;
            }
            assert!(
                Instant::now() < deadline,
                "{} did not exit in time; stderr: {}",
                self.name,
                self.stderr.lock().unwrap()
            );
            thread::sleep(Duration::from_millis(10));
        };
        self.join_readers();
        let stdout: Vec<String> = self.lines.try_iter().collect();
        let stderr = std::mem::take(&mut *self.stderr.lock().unwrap());
        Finished {
            status,
            stdout: stdout.join("\n"),
            stderr,
        }
    }

    /// Sends `sig` and waits for the exit; the exit must be status 0 and
    /// stdout must hold nothing after the lines already taken. Returns
    /// stderr (a server's shutdown summary).
    pub fn stop_with(self, sig: libc::c_int) -> String {
        let name = self.name.clone();
        self.signal(sig);
        let done = self.finish();
        assert!(
            done.status.success(),
            "{name} exited with {:?} after signal {sig}; stderr: {}",
            done.status,
            done.stderr
        );
        assert_eq!(done.stdout, "", "{name} prints exactly one line on stdout");
        done.stderr
    }

    /// [`Proc::stop_with`] SIGINT.
    pub fn stop(self) -> String {
        self.stop_with(libc::SIGINT)
    }

    /// Kills the process if it still runs, and reaps it.
    fn reap(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    /// Waits for the output readers: they end when the pipes close, that is
    /// when the process has exited.
    fn join_readers(&mut self) {
        for r in self.readers.drain(..) {
            r.join().expect("reader thread");
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.reap();
    }
}

/// Runs `program` to completion.
pub fn run(program: impl Program, args: &[&str]) -> Finished {
    Proc::spawn(program, args).finish()
}

/// The addresses in a server's first line, `PROG: listening on A, B (...)`.
pub fn listen_addrs(prog: &str, line: &str) -> Vec<SocketAddr> {
    let rest = line
        .strip_prefix(&format!("{prog}: listening on "))
        .unwrap_or_else(|| panic!("unexpected listening line {line:?}"));
    let list = &rest[..rest
        .find(" (")
        .expect("listening line has a (backend ...) part")];
    list.split(", ")
        .map(|a| {
            a.parse()
                .unwrap_or_else(|e| panic!("bad address {a:?} in {line:?}: {e}"))
        })
        .collect()
}

/// The number after `key` in `text` (a summary line).
pub fn field(text: &str, key: &str) -> u64 {
    let at = text
        .find(key)
        .unwrap_or_else(|| panic!("{key:?} not in {text:?}"))
        + key.len();
    let digits: String = text[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits
        .parse()
        .unwrap_or_else(|_| panic!("no number after {key:?} in {text:?}"))
}

/// CPU time (user + system) the process `pid` has used, in clock ticks
/// (see [`clock_ticks_per_second`]), from `/proc/PID/stat`.
pub fn cpu_ticks(pid: libc::pid_t) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("proc stat");
    // The command name may hold spaces: the fields after it start past ')'.
    let rest = &stat[stat.rfind(')').expect("comm") + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime: fields 14 and 15 of the line, 12 and 13 after ')'.
    let utime: u64 = fields[11].parse().expect("utime");
    let stime: u64 = fields[12].parse().expect("stime");
    utime + stime
}

/// How many clock ticks make a second (`_SC_CLK_TCK`).
pub fn clock_ticks_per_second() -> u64 {
    // SAFETY: sysconf only reads a configuration value.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    assert!(t > 0, "sysconf(_SC_CLK_TCK)");
    t as u64
}

/// The resident memory of process `pid`, from `/proc/PID/status`.
pub fn rss_bytes(pid: libc::pid_t) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .expect("VmRSS line");
    let kib: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .expect("VmRSS value");
    kib * 1024
}
