//! The `compare` example and `TRIPOLL_BACKEND`: set, it restricts the table
//! to that backend, as `--backend` does; an unknown name is an error, as in
//! every other example; `--backend` wins over the variable.

mod common;

use common::child::{self, Proc};

/// The backends `compare` printed a row for.
fn rows(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            let name = w.next()?;
            let n = w.next()?;
            n.parse::<usize>().ok().map(|_| name.to_owned())
        })
        .collect()
}

const QUICK: [&str; 6] = ["--sizes", "10", "--waits", "20", "--reps", "1"];

#[test]
fn compare_runs_every_backend_without_the_variable() {
    let done = Proc::spawn(child::example("compare"), &QUICK).finish();
    assert!(done.status.success(), "{}", done.stderr);
    // uring where it is built in (the examples are built with the test's
    // features); without it compare says it left uring out.
    let mut expected = vec!["epoll", "poll", "select"];
    if cfg!(feature = "io-uring") {
        expected.push("uring");
    } else {
        assert!(done.stdout.contains("uring: not run"), "{}", done.stdout);
    }
    assert_eq!(rows(&done.stdout), expected, "{}", done.stdout);
}

#[test]
fn compare_honours_tripoll_backend() {
    for backend in ["epoll", "poll", "select"] {
        let done = Proc::spawn_env(
            child::example("compare"),
            &QUICK,
            &[("TRIPOLL_BACKEND", backend)],
        )
        .finish();
        assert!(done.status.success(), "{backend}: {}", done.stderr);
        assert_eq!(rows(&done.stdout), [backend], "{}", done.stdout);
    }
}

#[test]
fn compare_refuses_an_unknown_tripoll_backend() {
    let done = Proc::spawn_env(
        child::example("compare"),
        &QUICK,
        &[("TRIPOLL_BACKEND", "bogus")],
    )
    .finish();
    assert_eq!(done.status.code(), Some(1), "{}", done.stdout);
    assert!(
        done.stderr.contains("unknown backend \"bogus\""),
        "{}",
        done.stderr
    );
    assert!(rows(&done.stdout).is_empty(), "no table: {}", done.stdout);
}

#[test]
fn compare_backend_flag_wins_over_the_variable() {
    let args = [&QUICK[..], &["--backend", "poll"]].concat();
    let done = Proc::spawn_env(
        child::example("compare"),
        &args,
        &[("TRIPOLL_BACKEND", "select")],
    )
    .finish();
    assert!(done.status.success(), "{}", done.stderr);
    assert_eq!(rows(&done.stdout), ["poll"], "{}", done.stdout);
}

#[test]
fn compare_prints_a_row_per_backend() {
    let done = child::run(
        child::example("compare"),
        &[
            "--sizes", "10,100", "--active", "1", "--waits", "200", "--reps", "3",
        ],
    );
    assert!(done.status.success(), "{}", done.stderr);
    for backend in ["epoll", "poll", "select"] {
        for n in ["10", "100"] {
            let row = done
                .stdout
                .lines()
                .find(|l| {
                    let mut w = l.split_whitespace();
                    w.next() == Some(backend) && w.next() == Some(n)
                })
                .unwrap_or_else(|| panic!("no row for {backend} N={n}:\n{}", done.stdout));
            assert!(!row.contains("n/a"), "{row}");
            assert!(
                ["ns", "µs", "ms"].iter().any(|u| row.contains(u)),
                "a time per wait: {row}"
            );
        }
    }
}

#[test]
fn compare_marks_select_beyond_fd_setsize_as_na() {
    let done = child::run(
        child::example("compare"),
        &["--sizes", "2000", "--waits", "10", "--reps", "1"],
    );
    assert!(done.status.success(), "{}", done.stderr);
    let row = |b: &str| {
        done.stdout
            .lines()
            .find(|l| l.starts_with(b))
            .unwrap_or_else(|| panic!("no {b} row:\n{}", done.stdout))
            .to_owned()
    };
    assert!(
        row("select").contains("n/a (fd ≥ FD_SETSIZE)"),
        "{}",
        done.stdout
    );
    assert!(!row("epoll").contains("n/a"), "{}", done.stdout);
    assert!(!row("poll ").contains("n/a"), "{}", done.stdout);
}
