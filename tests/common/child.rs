//! The examples as child processes, for the end-to-end tests
//! (`tests/examples.rs`, and `tests/http.rs` and `tests/http_hostile.rs`
//! through `tests/http_support`).
//!
//! `cargo test` builds the examples into `target/<profile>/examples/` next to
//! the test binaries in `target/<profile>/deps/`. A filtered run (`cargo test
//! --test examples`) does not, and could find stale binaries, so the first
//! test to need an example runs `cargo build --example NAME` for the same
//! profile and target directory (a no-op when it is fresh).
//!
//! Every child is killed when its guard drops and every wait has a deadline:
//! a broken example fails the test, it does not hang it.

use std::io::{self, BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

/// The longest a child may take to print a line or to exit.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// The binary of example `name`, built fresh once per test process.
pub fn example(name: &str) -> PathBuf {
    static BUILT: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let exe = std::env::current_exe().expect("current_exe");
    // target/<profile>/deps/<test>-<hash>
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test binary lives in target/<profile>/deps");
    // One build at a time: cargo would only wait for its lock anyway. A
    // build that failed (and poisoned the lock) is tried again, so every
    // test that needs it reports why.
    let mut built = BUILT.lock().unwrap_or_else(PoisonError::into_inner);
    if !built.iter().any(|b| b == name) {
        build(profile_dir, name);
        built.push(name.to_owned());
    }
    let path = profile_dir.join("examples").join(name);
    assert!(
        path.exists(),
        "example binary {} is missing",
        path.display()
    );
    path
}

/// `cargo build --example name` into the target directory and profile of
/// this test binary.
fn build(profile_dir: &Path, name: &str) {
    let target_dir = profile_dir.parent().expect("target dir");
    let profile = profile_dir
        .file_name()
        .and_then(|n| n.to_str())
        .expect("profile dir name");
    let mut cmd = Command::new(env!("CARGO"));
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["build", "--quiet", "--target-dir"])
        .arg(target_dir)
        .args(["--example", name]);
    // The same features as this test binary, so that `--backend uring` works
    // in the examples under `cargo test --all-features`.
    if cfg!(feature = "io-uring") {
        cmd.args(["--features", "io-uring"]);
    }
    match profile {
        "debug" => {}
        "release" => {
            cmd.arg("--release");
        }
        other => {
            cmd.args(["--profile", other]);
        }
    }
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("run cargo build for the {name} example: {e}"));
    assert!(
        out.status.success(),
        "building the {name} example failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A running example. Dropping it kills the process.
pub struct Proc {
    name: String,
    child: Child,
    lines: Receiver<String>,
    stderr: Arc<Mutex<String>>,
    readers: Vec<thread::JoinHandle<()>>,
}

/// What a finished example left behind.
pub struct Finished {
    pub status: ExitStatus,
    /// What it printed on stdout after the lines taken with [`Proc::line`].
    pub stdout: String,
    pub stderr: String,
}

impl Proc {
    /// Starts example `name` with `args` and `TRIPOLL_BACKEND` unset.
    pub fn spawn(name: &str, args: &[&str]) -> Proc {
        Proc::spawn_env(name, args, &[])
    }

    /// Starts example `name` with `args`, `TRIPOLL_BACKEND` unset and the
    /// variables `env` set.
    pub fn spawn_env(name: &str, args: &[&str], env: &[(&str, &str)]) -> Proc {
        let mut cmd = Command::new(example(name));
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
            name: name.to_owned(),
            child,
            lines,
            stderr: err_buf,
            readers: vec![out_reader, err_reader],
        }
    }

    /// The next line the example prints on stdout. If none comes within
    /// [`PATIENCE`], kills the example and panics with all it wrote on
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

    /// Waits for the example to exit, up to [`PATIENCE`].
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

/// Runs an example to completion.
pub fn run(name: &str, args: &[&str]) -> Finished {
    Proc::spawn(name, args).finish()
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
