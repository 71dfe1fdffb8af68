//! The library's examples (`examples/`) as child processes, for the tests
//! of those examples; [`Proc`] and its helpers come from the workspace's
//! test kit, shared with the lab's tests.
//!
//! `cargo test` builds the examples into `target/<profile>/examples/`. A
//! filtered run (`cargo test --test compare`) does not, and could find stale
//! binaries, so the first test to need an example runs `cargo build
//! --example NAME` for the same profile and target directory (a no-op when
//! it is fresh).

use std::path::Path;
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Mutex, PoisonError};

pub use tripoll_testkit::child::*;

/// The binary of example `name`, built fresh once per test process.
pub fn example(name: &str) -> PathBuf {
    static BUILT: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let profile_dir = profile_dir();
    // One build at a time: cargo would only wait for its lock anyway. A
    // build that failed (and poisoned the lock) is tried again, so every
    // test that needs it reports why.
    let mut built = BUILT.lock().unwrap_or_else(PoisonError::into_inner);
    if !built.iter().any(|b| b == name) {
        build(&profile_dir, name);
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
        .args(["build", "--quiet", "-p", "tripoll", "--target-dir"])
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
