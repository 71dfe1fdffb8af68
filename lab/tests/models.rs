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

use common::child::{
    self, clock_ticks_per_second, cpu_ticks, field, listen_addrs, run, Proc, PATIENCE,
};

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
        "epoll-percore",
        "epoll-exclusive",
        "async-epoll",
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
    // The completion model with them (multishot receive needs Linux 6.0).
    let completion = list.iter().any(|(n, _)| n == "uring-completion");
    assert_eq!(completion, cfg!(feature = "io-uring"), "{list:?}");
    list
}

/// Serves `model`, runs the client with `conns` connections of `messages`
/// messages of `size` bytes each against it, and checks that every byte
/// came back.
fn check_echo(model: &str, conns: u64, messages: u64, size: u64) {
    let mut server = Proc::spawn("models", &["--serve", model, "--port", "0"]);
    let line = server.line();
    let port = listen_addrs("models", &line)[0].port();
    check_echo_on(model, port, conns, messages, size);
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

/// One CSV row of the sweep.
#[derive(Debug)]
struct CsvRow {
    model: String,
    n: u64,
    active: u64,
    placement: String,
    runs: u64,
    status: String,
    msgs: f64,
    msgs_min: f64,
    msgs_max: f64,
    busy: String,
    reason: String,
}

const CSV_HEADER: &str = "model,connections,active,placement,runs,status,msgs_per_sec,msgs_min,\
                          msgs_max,p50_ns,p99_ns,cpu_ns_per_msg,client_cpu_ns_per_msg,peak_kib,\
                          threads,processes,load_before,load_after,other_load,busy,reason";

/// The `# key: value` lines and the rows of the sweep's CSV.
fn parse_csv(out: &str) -> (Vec<(String, String)>, Vec<CsvRow>) {
    let mut lines = out.lines().peekable();
    let mut meta = Vec::new();
    while let Some(l) = lines.next_if(|l| l.starts_with("# ")) {
        let (k, v) = l[2..].split_once(": ").expect("# key: value");
        meta.push((k.to_owned(), v.to_owned()));
    }
    assert_eq!(lines.next(), Some(CSV_HEADER), "{out}");
    let rows = lines
        .map(|l| {
            let cols: Vec<&str> = l.splitn(21, ',').collect();
            assert_eq!(cols.len(), 21, "row {l:?}");
            let num = |i: usize| cols[i].parse::<f64>().unwrap_or(0.0);
            CsvRow {
                model: cols[0].to_owned(),
                n: cols[1].parse().expect("N"),
                active: cols[2].parse().expect("active"),
                placement: cols[3].to_owned(),
                runs: cols[4].parse().expect("runs"),
                status: cols[5].to_owned(),
                msgs: num(6),
                msgs_min: num(7),
                msgs_max: num(8),
                busy: cols[19].to_owned(),
                reason: cols[20].trim_matches('"').to_owned(),
            }
        })
        .collect();
    (meta, rows)
}

/// The protocol's record: every key the issue asks for, with a value.
const META_KEYS: [&str; 8] = [
    "machine",
    "cores",
    "kernel",
    "commit",
    "load_start",
    "load_end",
    "load_1min_range",
    "busy_cells",
];

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
    let done = run("models", &["--serve", "uring-completion", "--port", "0"]);
    assert_eq!(done.status.code(), Some(2), "{}", done.stderr);
    assert!(
        done.stderr.contains("uring-completion cannot run here")
            && done.stderr.contains("io-uring"),
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
    let (_, rows) = parse_csv(&done.stdout);
    assert_eq!(rows.len(), models.len() * 2, "{}", done.stdout);
    for (model, cap) in &models {
        for n in [1, 20] {
            let row = rows
                .iter()
                .find(|r| &r.model == model && r.n == n)
                .unwrap_or_else(|| panic!("no row for {model} at {n}"));
            assert_eq!(row.active, n, "{model} at {n}: all active");
            let fits = cap.is_none_or(|c| n <= c);
            if fits {
                assert_eq!(row.status, "ok", "{model} at {n}: {}", row.reason);
                assert!(row.msgs > 0.0, "{model} at {n} echoed nothing");
            } else {
                assert_eq!(row.status, "cannot", "{model} at {n}");
                assert!(!row.reason.is_empty(), "{model} at {n}: a reason");
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
    let (_, rows) = parse_csv(&done.stdout);
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].status, "cannot");
    assert!(
        rows[0].reason.contains("one client at a time"),
        "{}",
        rows[0].reason
    );
    assert_eq!(rows[1].status, "cannot");
    assert!(rows[1].reason.contains("below 1024"), "{}", rows[1].reason);
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

/// The byte at offset `i` of the never-reading client's stream.
fn never_read_pattern(i: usize) -> u8 {
    (i % 251) as u8
}

/// A client that sends far more than the socket buffers hold and does not
/// read: a model must stop reading from it (or block on it, in a thread or
/// process of its own) without losing a byte, and go on serving the
/// others meanwhile. Then the client reads, and every byte comes back.
///
/// The coroutine model is checked too: it must see the client's end of
/// stream as well. (It did not: `Async::read` took a short read as proof
/// that the socket was drained and cleared the read readiness; when the
/// client's FIN arrived with its last bytes, the edge was spent and the
/// read that would return 0 waited forever. Fixed in the library, with its
/// own test in `tests/async.rs`.)
#[test]
fn every_model_serves_others_while_a_client_never_reads() {
    child::bin("client");
    for (model, cap) in models() {
        if cap.is_some_and(|c| c < 2) {
            continue; // `blocking` serves one client at a time, by design
        }
        check_never_reading_client(&model, cap);
    }
}

fn check_never_reading_client(model: &str, cap: Option<u64>) {
    use std::io::{Read, Write};
    use std::net::{Shutdown, TcpStream};
    use std::time::Duration;

    const TOTAL: usize = 8 << 20;
    {
        let mut server = Proc::spawn("models", &["--serve", model, "--port", "0"]);
        let addr = listen_addrs("models", &server.line())[0];
        let stream = TcpStream::connect(addr).expect("connect");
        // A bound for a broken server, not a measure: the test fails
        // instead of hanging.
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .expect("timeout");
        let mut writer = stream.try_clone().expect("clone");
        let sending = std::thread::spawn(move || {
            let data: Vec<u8> = (0..TOTAL).map(never_read_pattern).collect();
            writer.write_all(&data).expect("send everything");
            writer.shutdown(Shutdown::Write).expect("shutdown");
        });
        // Others are served while that client reads nothing.
        let others = cap.map_or(5, |c| c.min(5) - 1);
        check_echo_on(model, addr.port(), others, 10, 1000);
        let mut back = Vec::with_capacity(TOTAL);
        (&stream)
            .read_to_end(&mut back)
            .unwrap_or_else(|e| panic!("{model}: read the echo after {} bytes: {e}", back.len()));
        sending.join().expect("the sender");
        assert_eq!(back.len(), TOTAL, "{model}: echoed bytes");
        let wrong = back
            .iter()
            .enumerate()
            .filter(|&(i, &b)| b != never_read_pattern(i))
            .count();
        assert_eq!(wrong, 0, "{model}: wrong bytes in the echo");
        drop(server);
    }
}

/// Runs the client against the server of `model` on `port`, with `conns`
/// connections of `messages` messages of `size` bytes each, and checks
/// that every byte came back, on every connection.
fn check_echo_on(model: &str, port: u16, conns: u64, messages: u64, size: u64) {
    let (p, c, m, s) = (
        port.to_string(),
        conns.to_string(),
        messages.to_string(),
        size.to_string(),
    );
    let done = run(
        "client",
        &[
            "--port",
            &p,
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
}

/// `client --active K`: all N connections are open at once, only K send,
/// the others send nothing and close cleanly; on every model that can
/// hold N.
#[test]
fn client_holds_idle_connections_beside_the_active_ones() {
    child::bin("client");
    for model in ["poll-level", "epoll-level", "thread", "epoll-percore"] {
        let mut server = Proc::spawn("models", &["--serve", model, "--port", "0"]);
        let port = listen_addrs("models", &server.line())[0].port().to_string();
        let done = run(
            "client",
            &[
                "--port",
                &port,
                "-c",
                "60",
                "--active",
                "4",
                "--messages",
                "7",
                "--size",
                "300",
                "--timeout",
                "20s",
            ],
        );
        assert!(
            done.status.success(),
            "{model}: {}\n{}",
            done.stdout,
            done.stderr
        );
        assert_eq!(field(&done.stdout, "connections: "), 60, "{model}: all ok");
        assert_eq!(
            field(&done.stdout, "open at once: "),
            60,
            "{model}: the idle ones were held while the active ones ran"
        );
        assert_eq!(field(&done.stdout, "messages: "), 4 * 7, "{model}");
        assert_eq!(field(&done.stdout, "verified: "), 4 * 7 * 300, "{model}");
        assert_eq!(field(&done.stdout, "corrupt: "), 0, "{model}");
        drop(server);
    }
    let done = run("client", &["--port", "9", "-c", "3", "--active", "4"]);
    assert_eq!(done.status.code(), Some(2), "{}", done.stderr);
    assert!(
        done.stderr.contains("--active 4 is more than the 3"),
        "{}",
        done.stderr
    );
}

/// `models --active`: a cell per K, the K recorded, every cell measured.
#[test]
fn sweep_measures_idle_connection_cells() {
    child::bin("client");
    let done = run(
        "models",
        &[
            "--models",
            "poll-level,epoll-level",
            "--connections",
            "40",
            "--active",
            "4,100",
            "--duration",
            "100ms",
            "--quick",
            "--csv",
        ],
    );
    assert!(done.status.success(), "{}", done.stderr);
    let (_, rows) = parse_csv(&done.stdout);
    let cells: Vec<(&str, u64, u64, &str)> = rows
        .iter()
        .map(|r| (r.model.as_str(), r.n, r.active, r.status.as_str()))
        .collect();
    assert_eq!(
        cells,
        [
            ("poll-level", 40, 4, "ok"),
            ("poll-level", 40, 40, "ok"),
            ("epoll-level", 40, 4, "ok"),
            ("epoll-level", 40, 40, "ok"),
        ],
        "{}",
        done.stdout
    );
}

/// The default sweep: N up to 10 000, the idle rows at 10 000 with 10
/// and 100 active (select cannot hold them: a reason, not a run), the new
/// models, and an estimate under the 10 minutes it must fit in.
#[test]
fn default_plan_has_the_idle_rows_and_fits_in_ten_minutes() {
    let done = run("models", &["--plan"]);
    assert!(done.status.success(), "{}", done.stderr);
    let lines: Vec<Vec<&str>> = done
        .stdout
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.split('\t').collect())
        .collect();
    let cell = |model: &str, n: &str, k: &str| {
        lines
            .iter()
            .find(|c| c[1] == model && c[2] == n && c[3] == k)
            .unwrap_or_else(|| panic!("no {model} N={n} K={k} in {}", done.stdout))
            .clone()
    };
    for model in [
        "poll-level",
        "epoll-level",
        "epoll-percore",
        "epoll-exclusive",
        "async-epoll",
    ] {
        for k in ["10", "100", "10000"] {
            assert_eq!(cell(model, "10000", k)[5], "measure", "{model} K={k}");
        }
    }
    for k in ["10", "100"] {
        assert!(cell("select-level", "10000", k)[5].starts_with("cannot: select"));
    }
    let last = done.stdout.lines().last().expect("the estimate");
    let minutes: u64 = last
        .split("about ")
        .nth(1)
        .and_then(|t| t.split('m').next())
        .and_then(|m| m.parse().ok())
        .unwrap_or(0); // under a minute: "about 42s"
    assert!(last.contains("cells to measure"), "{last}");
    assert!(minutes < 10, "the default sweep is planned to take {last}");
}

/// `--runs K` alternates: run 1 of every cell, then run 2; in the plan and
/// in the order the cells actually run; and the CSV records the runs and
/// the spread around the median.
#[test]
fn runs_alternate_between_models() {
    child::bin("client");
    let args = [
        "--runs",
        "2",
        "--models",
        "epoll-level,thread",
        "--connections",
        "3",
        "--duration",
        "100ms",
        "--quick",
    ];
    let plan = run("models", &[&args[..], &["--plan"]].concat());
    assert!(plan.status.success(), "{}", plan.stderr);
    let order: Vec<(String, String)> = plan
        .stdout
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| {
            let c: Vec<&str> = l.split('\t').collect();
            (c[0].to_owned(), c[1].to_owned())
        })
        .collect();
    let want = [
        ("1", "epoll-level"),
        ("1", "thread"),
        ("2", "epoll-level"),
        ("2", "thread"),
    ];
    let want: Vec<(String, String)> = want
        .iter()
        .map(|(r, m)| (r.to_string(), m.to_string()))
        .collect();
    assert_eq!(order, want, "{}", plan.stdout);

    let done = run("models", &[&args[..], &["--csv"]].concat());
    assert!(done.status.success(), "{}", done.stderr);
    let ran: Vec<(String, String)> = done
        .stderr
        .lines()
        .filter_map(|l| {
            let model = l.split(": ").nth(2)?.split(' ').next()?;
            let r = l.split(", run ").nth(1)?.split(' ').next()?;
            Some((r.to_owned(), model.to_owned()))
        })
        .collect();
    assert_eq!(ran, want, "{}", done.stderr);
    let (_, rows) = parse_csv(&done.stdout);
    assert_eq!(rows.len(), 2);
    for r in &rows {
        assert_eq!((r.status.as_str(), r.runs), ("ok", 2), "{r:?}");
        assert!(r.msgs_min <= r.msgs && r.msgs <= r.msgs_max, "{r:?}");
    }
}

/// `--strict` with a threshold no machine is under: it refuses to start,
/// one line, exit status 2, nothing measured.
#[test]
fn strict_refuses_a_busy_machine() {
    let done = run(
        "models",
        &[
            "--strict",
            "--max-load",
            "0",
            "--models",
            "epoll-level",
            "--connections",
            "1",
        ],
    );
    assert_eq!(done.status.code(), Some(2), "{}", done.stderr);
    let errors: Vec<&str> = done
        .stderr
        .lines()
        .filter(|l| !l.starts_with("models: no "))
        .collect();
    assert_eq!(errors.len(), 1, "{}", done.stderr);
    assert!(
        errors[0].contains("busy") && errors[0].contains("--strict"),
        "{}",
        errors[0]
    );
    assert!(done.stdout.is_empty(), "{}", done.stdout);
    assert!(!done.stderr.contains(" ... "), "no cell ran");
}

/// Every output (CSV, JSON, table, chart) records the machine, kernel,
/// load and commit; a cell measured above `--max-load` is marked busy in
/// each of them.
#[test]
fn every_output_records_the_protocol() {
    child::bin("client");
    let done = run(
        "models",
        &[
            "--models",
            "epoll-level",
            "--connections",
            "2",
            "--duration",
            "100ms",
            "--quick",
            "--max-load",
            "0",
            "--csv",
        ],
    );
    assert!(done.status.success(), "{}", done.stderr);
    let (meta, rows) = parse_csv(&done.stdout);
    for key in META_KEYS {
        let v = meta.iter().find(|(k, _)| k == key);
        assert!(
            v.is_some_and(|(_, v)| !v.is_empty()),
            "{key} missing: {meta:?}"
        );
    }
    let get = |k: &str| {
        meta.iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
    };
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").expect("osrelease");
    assert_eq!(get("kernel").as_deref(), Some(kernel.trim()));
    if let Ok(git) = std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
    {
        if git.status.success() {
            let head = String::from_utf8_lossy(&git.stdout).trim().to_owned();
            assert!(
                get("commit").is_some_and(|c| c.starts_with(&head)),
                "{meta:?}"
            );
        }
    }
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (rows[0].status.as_str(), rows[0].busy.as_str()),
        ("ok", "busy")
    );
    assert_eq!(get("busy_cells").as_deref(), Some("1 of 1"));
    assert!(
        rows[0].placement == "server 0 client 1" || rows[0].placement == "unpinned",
        "{:?}",
        rows[0].placement
    );

    let dir = std::env::temp_dir().join(format!("tripoll-protocol-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let (csv, svg) = (dir.join("sweep.csv"), dir.join("models.svg"));
    std::fs::write(&csv, &done.stdout).expect("write csv");
    let csv = csv.to_str().expect("utf-8 path");
    let json = run("models", &["--from-csv", csv, "--json"]);
    assert!(json.status.success(), "{}", json.stderr);
    let table = run(
        "models",
        &[
            "--from-csv",
            csv,
            "--svg",
            svg.to_str().expect("utf-8 path"),
        ],
    );
    assert!(table.status.success(), "{}", table.stderr);
    let drawn = std::fs::read_to_string(&svg).expect("the chart");
    for (key, value) in &meta {
        assert!(
            json.stdout.contains(&format!("\"{key}\":")),
            "{key} not in the JSON"
        );
        assert!(
            table.stdout.contains(&format!("- {key}: {value}")),
            "{key} not in the table"
        );
    }
    assert!(json.stdout.contains("\"busy\":true"), "{}", json.stdout);
    assert!(table.stdout.contains("**busy**"), "{}", table.stdout);
    for key in ["kernel", "commit", "machine"] {
        let value = get(key).expect("recorded");
        assert!(drawn.contains(&value), "the chart lacks the {key} {value}");
    }
    assert!(drawn.contains("load average"), "the chart lacks the load");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The CPUs this test may run on (its `Cpus_allowed_list`), lowest first.
fn allowed_cpus(pid: &str) -> Vec<usize> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let list = status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .expect("Cpus_allowed_list")
        .trim()
        .to_owned();
    let mut cpus = Vec::new();
    for part in list.split(',') {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        let (a, b): (usize, usize) = (a.parse().expect("cpu"), b.parse().expect("cpu"));
        cpus.extend(a..=b);
    }
    cpus
}

/// Pinning: `--serve --cpu N` runs the server on CPU N alone; the plan
/// pins one-thread servers to the first CPU and their client to the
/// second, leaves the multi-core ones unpinned, and `--no-pin` pins
/// nothing.
#[test]
fn one_thread_servers_are_pinned_and_multi_core_ones_are_not() {
    let cpus = allowed_cpus("self");
    let last = cpus.last().expect("a CPU").to_string();
    let mut server = Proc::spawn(
        "models",
        &["--cpu", &last, "--serve", "epoll-level", "--port", "0"],
    );
    let _ = server.line(); // listening: the pinning is done
    assert_eq!(
        allowed_cpus(&server.pid().to_string()),
        [cpus[cpus.len() - 1]]
    );
    drop(server);

    let placement = |extra: &[&str]| {
        let args = [
            &[
                "--plan",
                "--models",
                "epoll-level,thread,epoll-percore",
                "--connections",
                "10",
            ][..],
            extra,
        ]
        .concat();
        let done = run("models", &args);
        assert!(done.status.success(), "{}", done.stderr);
        done.stdout
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| {
                let c: Vec<&str> = l.split('\t').collect();
                (c[1].to_owned(), c[4].to_owned())
            })
            .collect::<Vec<_>>()
    };
    let pinned = placement(&[]);
    match cpus[..] {
        [a, b, ..] => assert_eq!(pinned[0].1, format!("server {a} client {b}"), "{pinned:?}"),
        _ => assert_eq!(pinned[0].1, "unpinned", "{pinned:?}"),
    }
    assert_eq!(pinned[1].1, "unpinned", "{pinned:?}");
    assert_eq!(pinned[2].1, "unpinned", "{pinned:?}");
    assert!(placement(&["--no-pin"])
        .iter()
        .all(|(_, p)| p == "unpinned"));

    let bad = run("client", &["--cpu", "100000", "--port", "9"]);
    assert_eq!(bad.status.code(), Some(2), "{}", bad.stderr);
}

/// What became of a client that sent a message and waited for its echo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    /// The echo came back: the server serves it.
    Echoed,
    /// End of stream or a reset, and no echo: the server shed it.
    Closed,
    /// Nothing by the deadline: left waiting (in the backlog).
    Waiting,
}

/// Sends `msg` on each of `clients`, then reads each one's echo, all of
/// them by one `deadline` (a client still waiting then is
/// [`Fate::Waiting`]); returns how many met each fate, in the order
/// echoed, closed, waiting.
fn fates(
    clients: &mut [std::net::TcpStream],
    msg: &[u8],
    deadline: std::time::Instant,
) -> [usize; 3] {
    use std::io::{ErrorKind, Read, Write};
    use std::time::{Duration, Instant};

    for c in clients.iter_mut() {
        let _ = c.write_all(msg); // a shed client may be closed already
    }
    let mut count = [0; 3];
    for c in clients.iter_mut() {
        let left = deadline.saturating_duration_since(Instant::now());
        c.set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .expect("read timeout");
        let mut back = vec![0; msg.len()];
        let fate = match c.read_exact(&mut back) {
            Ok(()) => {
                assert_eq!(back, msg, "a wrong echo");
                Fate::Echoed
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                Fate::Waiting
            }
            Err(_) => Fate::Closed, // end of stream (before any echo) or reset
        };
        count[fate as usize] += 1;
    }
    count
}

/// Models that never reach their descriptor limit, so the limit has
/// nothing to shed in them (checked at `--max-fds 32` with 60 clients
/// held): `fork`'s parent closes each connection once its child has it
/// (4 descriptors in the parent, 60 children, all 60 served); `blocking`
/// holds one connection at a time and leaves the others in the backlog by
/// design (5 descriptors, 1 served, 59 waiting), which is its capacity of
/// 1, not the descriptor limit.
const NEVER_AT_THE_LIMIT: [&str; 2] = ["fork", "blocking"];

/// Models that spin by design: `busy` tries every socket in turn without
/// ever waiting, a core's worth of CPU whether or not anything happens, so
/// its CPU time says nothing about the limit.
const SPINS_BY_DESIGN: [&str; 1] = ["busy"];

/// Whether process `pid` (a child not yet reaped) has exited.
fn exited(pid: libc::pid_t) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The state is the first field after the command name, ")" and a space.
    stat.rfind(')')
        .and_then(|i| stat[i + 2..].chars().next())
        .is_none_or(|state| state == 'Z' || state == 'X')
}

/// How many descriptors process `pid` has open.
fn open_fds(pid: libc::pid_t) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, Iterator::count)
}

/// Ends the test of `model`: its server is gone (or going); `what` says
/// what was seen, and the server's stderr why.
fn server_gone(server: Proc, model: &str, what: &str) -> ! {
    // Let it finish saying why (a moment), then make sure.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
    while !exited(server.pid()) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    server.signal(libc::SIGKILL);
    let stderr = server.finish().stderr;
    panic!("{model}: {what}: the server exited: {}", stderr.trim_end())
}

/// `count` clients of `addr`, connected (the kernel completes a connect
/// in the listener's backlog, before any accept).
fn connect_many(
    server: Proc,
    model: &str,
    addr: std::net::SocketAddr,
    count: usize,
) -> (Proc, Vec<std::net::TcpStream>) {
    let mut clients = Vec::with_capacity(count);
    for _ in 0..count {
        match std::net::TcpStream::connect(addr) {
            Ok(c) => clients.push(c),
            Err(e) => server_gone(server, model, &format!("connect: {e}")),
        }
    }
    (server, clients)
}

/// A model at its descriptor limit (`--max-fds 40`, with more clients
/// held open than that allows) refuses the clients it cannot serve (it
/// accepts and closes them at once, with a spare descriptor) instead of
/// leaving them in the backlog or exiting; it does not spin while out of
/// descriptors; it says so on stderr without flooding it; and once the
/// held clients go, it serves new ones. Returns what was seen, in one
/// line.
///
/// `uring-completion` used to re-arm its multishot accept at once after
/// any failure: at the limit the kernel answers EMFILE before it looks at
/// the backlog, so the re-armed accept failed at once, over and over (a
/// core's worth of CPU), and every client beyond the limit waited. The
/// other models exited with "Too many open files" at the first client
/// beyond the limit, all but `async-epoll`, which slept 100 ms after each
/// failed accept and left the clients beyond the limit in the backlog.
fn check_sheds_at_the_descriptor_limit(model: &str) -> String {
    use std::time::{Duration, Instant};

    const HELD: usize = 60;
    const NEWCOMERS: usize = 10;
    let mut server = Proc::spawn(
        "models",
        &["--serve", model, "--port", "0", "--max-fds", "40"],
    );
    let addr = listen_addrs("models", &server.line())[0];
    let pid = server.pid();

    // More clients than descriptors: the first ones are served, the
    // others must be shed. A bound, not a measure: a hang fails the test.
    let (server, mut held) = connect_many(server, model, addr, HELD);
    let [served, shed, waiting] =
        fates(&mut held, b"held", Instant::now() + Duration::from_secs(5));
    if exited(pid) {
        let what = format!("held {HELD}: {served} served, {shed} closed, {waiting} waiting");
        server_gone(server, model, &what);
    }
    // Newcomers, while those are held: refused at once, none left waiting.
    let (server, mut late) = connect_many(server, model, addr, NEWCOMERS);
    let [late_served, late_shed, late_waiting] =
        fates(&mut late, b"late", Instant::now() + Duration::from_secs(5));
    // Out of descriptors with every held client idle: no CPU to speak of.
    let t0 = cpu_ticks(pid);
    std::thread::sleep(Duration::from_secs(1));
    let ticks = cpu_ticks(pid) - t0;
    let per_second = clock_ticks_per_second();
    let outcome = format!(
        "{model}: held {HELD}: {served} served, {shed} shed, {waiting} waiting; \
         newcomers {NEWCOMERS}: {late_served} served, {late_shed} shed, {late_waiting} \
         waiting; {ticks} ticks of CPU in one idle second ({per_second} a second)"
    );
    eprintln!("{outcome}");
    if exited(pid) {
        server_gone(server, model, &outcome);
    }
    assert!(served > 0, "{outcome}: nobody served");
    assert_eq!(waiting, 0, "{outcome}: clients left in the backlog");
    assert!(shed > 0, "{outcome}: the limit shed nobody");
    assert_eq!(late_shed, NEWCOMERS, "{outcome}: newcomers not refused");
    if !SPINS_BY_DESIGN.contains(&model) {
        assert!(ticks <= 10, "{outcome}: it spins");
    }

    // The clients it serves are still served.
    let [again, _, _] = fates(&mut held, b"still", Instant::now() + Duration::from_secs(5));
    assert_eq!(again, served, "{outcome}: the served ones, once more");

    // Once the held clients go, newcomers are served again. Until the
    // server has closed them a newcomer may still be refused (a loop may
    // accept before it reads the ends of stream), so first wait for that:
    // a handful of descriptors left (at most 11 besides the clients: stdio,
    // two listeners, two pollers with their wake-up eventfds, two spares).
    drop(held);
    drop(late);
    let deadline = Instant::now() + PATIENCE;
    while open_fds(pid) > 16 {
        assert!(
            Instant::now() < deadline,
            "{model}: the held clients left, the server kept {} descriptors",
            open_fds(pid)
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut refused_after = 0;
    let mut server = server;
    loop {
        let (still_there, mut one) = connect_many(server, model, addr, 1);
        server = still_there;
        let [echoed, _, _] = fates(&mut one, b"after", Instant::now() + Duration::from_secs(5));
        if echoed == 1 {
            break;
        }
        refused_after += 1;
        assert!(Instant::now() < deadline, "{model}: never served again");
        std::thread::sleep(Duration::from_millis(50));
    }
    check_echo_on(model, addr.port(), 10, 10, 1000);

    // What it said meanwhile: that it refuses clients, in a few lines.
    server.signal(libc::SIGKILL);
    let stderr = server.finish().stderr;
    let lines = stderr.lines().count();
    assert!(
        stderr.contains("descriptors"),
        "{model}: refused clients without a word: {stderr:?}"
    );
    assert!(lines <= 3, "{model}: a log flood: {lines} lines: {stderr}");
    format!("{outcome}; {refused_after} refused before serving again; {lines} lines on stderr")
}

/// Every model that can run out of descriptors, at its limit: see
/// [`check_sheds_at_the_descriptor_limit`]. The models run side by side,
/// each its own server on its own port, so the test takes about as long
/// as the slowest of them.
#[test]
fn every_model_sheds_at_the_descriptor_limit() {
    child::bin("client");
    let listed: Vec<String> = models().into_iter().map(|(name, _)| name).collect();
    // The models of a backend not built in, or not available here: say
    // why, in the words of `models --serve`.
    for name in ["uring-level", "uring-edge", "uring-completion"] {
        if !listed.iter().any(|n| n == name) {
            let why = run("models", &["--serve", name]).stderr;
            eprintln!("skipped: {name}: {}", why.trim_end());
        }
    }
    let models: Vec<&str> = listed
        .iter()
        .map(String::as_str)
        .filter(|name| !NEVER_AT_THE_LIMIT.contains(name))
        .collect();
    // 70 clients per model, all at once.
    common::raise_fd_limit(100 * models.len() as u64 + 256);
    let results: Vec<(&str, std::thread::Result<String>)> = std::thread::scope(|s| {
        let running: Vec<_> = models
            .iter()
            .map(|&m| (m, s.spawn(move || check_sheds_at_the_descriptor_limit(m))))
            .collect();
        running.into_iter().map(|(m, t)| (m, t.join())).collect()
    });
    let mut failed = Vec::new();
    for (model, result) in results {
        match result {
            Ok(outcome) => eprintln!("ok: {outcome}"),
            Err(panic) => {
                let why = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_default();
                if why.starts_with(model) {
                    failed.push(why);
                } else {
                    failed.push(format!("{model}: {why}"));
                }
            }
        }
    }
    assert!(
        failed.is_empty(),
        "{} of {} models failed at the descriptor limit:\n{}",
        failed.len(),
        models.len(),
        failed.join("\n")
    );
}
