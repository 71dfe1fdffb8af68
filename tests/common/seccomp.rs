//! Real seccomp filters for tests that need the kernel to refuse a system
//! call: the test body runs in a child process of the test binary (a filter
//! cannot be removed, and some backend state is per process), which
//! installs the filter and then exercises the crate.

use std::process::Command;

use seccompiler::{BpfProgram, SeccompAction, SeccompFilter};

/// Set in the child so that the same test function runs its body.
const CHILD: &str = "TRIPOLL_SECCOMP_CHILD";

/// Runs `body` in a child process: this test binary again, running only
/// `test` (its full path, e.g. `pwait2::refused_with_eperm`). In the
/// parent, waits for the child and fails unless it ran that one test and
/// passed. A filter that kills the child fails the parent too.
pub fn in_child(test: &str, body: impl FnOnce()) {
    if std::env::var_os(CHILD).is_some_and(|v| v == test) {
        body();
        return;
    }
    let exe = std::env::current_exe().expect("test binary path");
    let out = Command::new(exe)
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD, test)
        .output()
        .expect("run the test binary again");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "child {test} failed ({}):\n{text}",
        out.status
    );
    assert!(
        text.contains("test result: ok. 1 passed"),
        "child {test} did not run exactly that test:\n{text}"
    );
}

/// Installs a filter on the calling thread under which `syscall` takes
/// `action` and every other call is allowed. Filters stack: the strictest
/// action of all installed filters wins.
pub fn install(syscall: i64, action: SeccompAction) {
    let filter = SeccompFilter::new(
        [(syscall, vec![])].into_iter().collect(),
        SeccompAction::Allow,
        action,
        std::env::consts::ARCH
            .try_into()
            .expect("a seccomp architecture"),
    )
    .expect("seccomp filter");
    let program: BpfProgram = filter.try_into().expect("compile the filter");
    seccompiler::apply_filter(&program).expect("install the filter");
}

/// Makes `syscall` fail with `errno` on this thread.
pub fn refuse(syscall: i64, errno: i32) {
    install(syscall, SeccompAction::Errno(errno as u32));
}

/// Makes `syscall` kill the process: proves a call is no longer made.
pub fn forbid(syscall: i64) {
    install(syscall, SeccompAction::KillProcess);
}

/// Makes `ioctl(_, request, _)` fail with `errno` on this thread; every
/// other request, and every other call, is allowed.
pub fn refuse_ioctl(request: libc::Ioctl, errno: i32) {
    use seccompiler::{SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompRule};
    let condition = SeccompCondition::new(
        1,
        SeccompCmpArgLen::Dword,
        SeccompCmpOp::Eq,
        as_u64(request),
    )
    .expect("seccomp condition");
    let rule = SeccompRule::new(vec![condition]).expect("seccomp rule");
    let filter = SeccompFilter::new(
        [(libc::SYS_ioctl, vec![rule])].into_iter().collect(),
        SeccompAction::Allow,
        SeccompAction::Errno(errno as u32),
        std::env::consts::ARCH
            .try_into()
            .expect("a seccomp architecture"),
    )
    .expect("seccomp filter");
    let program: BpfProgram = filter.try_into().expect("compile the filter");
    seccompiler::apply_filter(&program).expect("install the filter");
}

/// The request as the filter compares it (`Ioctl` is `c_ulong` or
/// `c_int`, depending on the C library).
#[allow(clippy::unnecessary_cast)]
fn as_u64(request: libc::Ioctl) -> u64 {
    request as u64
}
