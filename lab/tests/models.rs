//! The `models` example: every server model echoes every byte through the
//! same `client`, and the sweep fills every cell with a number or a
//! reason.
//!
//! Each model runs as a child process (`models --serve MODEL`), driven by
//! the client example in its verifying mode, which checks every echoed
//! byte against a pattern: a model that loses, reorders or corrupts a byte
//! makes the client fail. The models come from `models --list`, so a new
//! backend is tested without an edit here. Counts only, no timings.

mod common;

use common::child::{self, field, listen_addrs, run, Proc};

/// `(name, most clients at once)` for every model.
fn models() -> Vec<(String, Option<u64>)> {
    let done = run("models", &["--list"]);
    assert!(done.status.success(), "models --list: {}", done.stderr);
    let list: Vec<(String, Option<u64>)> = done
        .stdout
        .lines()
        .map(|l| {
            let (name, cap) = l.split_once('\t').expect("NAME<TAB>CAPACITY");
            (name.to_owned(), cap.parse().ok())
        })
        .collect();
    for expected in [
        "blocking",
        "fork",
        "thread",
        "busy",
        "epoll-level",
        "epoll-edge",
    ] {
        assert!(
            list.iter().any(|(n, _)| n == expected),
            "{expected} missing from {list:?}"
        );
    }
    // io_uring's rows exactly when the lab is built with it (the kernel
    // here allows io_uring): never a listed model that cannot run.
    let uring = list.iter().any(|(n, _)| n.starts_with("uring-"));
    assert_eq!(uring, cfg!(feature = "io-uring"), "{list:?}");
    list
}

/// Serves `model`, runs the client with `conns` connections of `messages`
/// messages of `size` bytes each against it, and checks that every byte
/// came back.
fn check_echo(model: &str, conns: u64, messages: u64, size: u64) {
    let mut server = Proc::spawn("models", &["--serve", model, "--port", "0"]);
    let line = server.line();
    let port = listen_addrs("models", &line)[0].port().to_string();
    let (c, m, s) = (conns.to_string(), messages.to_string(), size.to_string());
    let done = run(
        "client",
        &[
            "--port",
            &port,
            "-c",
            &c,
            "--messages",
            &m,
            "--size",
            &s,
            "--timeout",
            "20s",
        ],
    );
    assert!(
        done.status.success(),
        "{model}: client failed:\n{}\n{}",
        done.stdout,
        done.stderr
    );
    let want = conns * messages * size;
    assert_eq!(
        field(&done.stdout, "verified: "),
        want,
        "{model}: verified bytes"
    );
    assert_eq!(field(&done.stdout, "lost: "), 0, "{model}");
    assert_eq!(field(&done.stdout, "corrupt: "), 0, "{model}");
    assert_eq!(
        field(&done.stdout, "connections: "),
        conns,
        "{model}: connections ok"
    );
    drop(server);
}

#[test]
fn every_model_echoes_every_byte() {
    child::bin("client");
    for (model, cap) in models() {
        let conns = cap.map_or(40, |c| c.min(40));
        check_echo(&model, conns, 25, 1000);
    }
}

/// Messages larger than the socket buffers: the servers read and write
/// them in pieces, may meet a full send buffer, and must keep what they owe.
#[test]
fn every_model_echoes_messages_larger_than_socket_buffers() {
    child::bin("client");
    for (model, cap) in models() {
        let conns = cap.map_or(2, |c| c.min(2));
        check_echo(&model, conns, 2, 2 << 20);
    }
}

/// One CSV row of the sweep: (model, N, status, msgs_per_sec, reason).
fn parse_csv(out: &str) -> Vec<(String, u64, String, f64, String)> {
    let mut lines = out.lines();
    let header = lines.next().expect("a header line");
    assert!(header.starts_with("model,connections,status,msgs_per_sec"));
    lines
        .map(|l| {
            let cols: Vec<&str> = l.splitn(12, ',').collect();
            assert_eq!(cols.len(), 12, "row {l:?}");
            (
                cols[0].to_owned(),
                cols[1].parse().expect("N"),
                cols[2].to_owned(),
                cols[3].parse().unwrap_or(0.0),
                cols[11].trim_matches('"').to_owned(),
            )
        })
        .collect()
}

/// A model whose backend is not built in is refused by name, with the
/// reason, not served by something else.
#[cfg(not(feature = "io-uring"))]
#[test]
fn a_model_whose_backend_is_not_built_in_says_why() {
    let done = run("models", &["--serve", "uring-level", "--port", "0"]);
    assert_eq!(done.status.code(), Some(2), "{}", done.stderr);
    assert!(
        done.stderr.contains("uring-level cannot run here") && done.stderr.contains("io-uring"),
        "{}",
        done.stderr
    );
}

#[test]
fn quick_sweep_measures_or_explains_every_cell() {
    child::bin("client");
    let models = models();
    let done = run(
        "models",
        &[
            "--quick",
            "--connections",
            "1,20",
            "--duration",
            "200ms",
            "--csv",
        ],
    );
    assert!(done.status.success(), "sweep failed: {}", done.stderr);
    let rows = parse_csv(&done.stdout);
    assert_eq!(rows.len(), models.len() * 2, "{}", done.stdout);
    for (model, cap) in &models {
        for n in [1, 20] {
            let row = rows
                .iter()
                .find(|r| &r.0 == model && r.1 == n)
                .unwrap_or_else(|| panic!("no row for {model} at {n}"));
            let fits = cap.is_none_or(|c| n <= c);
            if fits {
                assert_eq!(row.2, "ok", "{model} at {n}: {}", row.4);
                assert!(row.3 > 0.0, "{model} at {n} echoed nothing");
            } else {
                assert_eq!(row.2, "cannot", "{model} at {n}");
                assert!(!row.4.is_empty(), "{model} at {n}: a reason");
            }
        }
    }

    // The CSV reads back unchanged, and the chart drawn from it names every
    // model that has a measured cell.
    let dir = std::env::temp_dir().join(format!("tripoll-models-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let (csv, svg) = (dir.join("sweep.csv"), dir.join("models.svg"));
    std::fs::write(&csv, &done.stdout).expect("write csv");
    let again = run(
        "models",
        &[
            "--from-csv",
            csv.to_str().expect("utf-8 path"),
            "--csv",
            "--svg",
            svg.to_str().expect("utf-8 path"),
        ],
    );
    assert!(again.status.success(), "{}", again.stderr);
    assert_eq!(again.stdout.trim_end(), done.stdout.trim_end());
    let drawn = std::fs::read_to_string(&svg).expect("the chart");
    assert!(
        drawn.starts_with("<svg"),
        "{}",
        &drawn[..drawn.len().min(200)]
    );
    for (model, _) in &models {
        assert!(
            drawn.contains(&format!(">\n{model}\n<")),
            "{model} not in the legend"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn cells_beyond_a_model_limit_say_why_without_running() {
    let done = run(
        "models",
        &[
            "--models",
            "blocking,select-level",
            "--connections",
            "2000",
            "--csv",
        ],
    );
    assert!(done.status.success(), "{}", done.stderr);
    let rows = parse_csv(&done.stdout);
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].2, "cannot");
    assert!(rows[0].4.contains("one client at a time"), "{}", rows[0].4);
    assert_eq!(rows[1].2, "cannot");
    assert!(rows[1].4.contains("below 1024"), "{}", rows[1].4);
    assert!(
        !done.stderr.contains(" ... "),
        "no cell was run: {}",
        done.stderr
    );
}

#[test]
fn unknown_model_is_a_usage_error() {
    let done = run("models", &["--serve", "nosuch"]);
    assert_eq!(done.status.code(), Some(2));
    assert!(
        done.stderr.contains("expected one of blocking"),
        "{}",
        done.stderr
    );
}
