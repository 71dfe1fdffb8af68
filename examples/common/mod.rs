//! The command line of the teaching servers, `[--backend NAME] [ADDR]`, kept
//! apart so that each example shows only its event loop.

use std::process;

use tripoll::{AnyPoller, Backend};

/// Where to listen and which backend to use.
pub struct Options {
    pub addr: String,
    pub backend: Backend,
}

impl Options {
    /// Parses the command line. `--help` prints `usage` and exits 0; an
    /// unknown option, a bad value or a bad `TRIPOLL_BACKEND` prints one
    /// line naming it and exits 2 (1 for the variable).
    pub fn parse(prog: &str, usage: &str, default_addr: &str) -> Options {
        let (mut addr, mut backend) = (None, None);
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "-h" | "--help" => {
                    print!("{usage}");
                    process::exit(0);
                }
                "--backend" => {
                    let Some(name) = args.next() else {
                        usage_error(prog, "--backend needs a value");
                    };
                    match name.parse() {
                        Ok(b) => backend = Some(b),
                        Err(e) => {
                            usage_error(prog, &format!("invalid value {name:?} for --backend: {e}"))
                        }
                    }
                }
                a if a.starts_with('-') => usage_error(prog, &format!("unknown option {a}")),
                a if addr.is_none() => addr = Some(a.to_owned()),
                a => usage_error(prog, &format!("unexpected argument {a:?}")),
            }
        }
        let backend = match backend {
            Some(b) => b,
            None => Backend::from_env().unwrap_or_else(|e| die(prog, e)),
        };
        let addr = addr.unwrap_or_else(|| default_addr.to_owned());
        Options { addr, backend }
    }

    /// The poller of the chosen backend, or exit 1 saying why not.
    pub fn poller(&self, prog: &str) -> AnyPoller {
        AnyPoller::new(self.backend).unwrap_or_else(|e| die(prog, e))
    }
}

fn usage_error(prog: &str, msg: &str) -> ! {
    eprintln!("{prog}: error: {msg} (try '{prog} --help')");
    process::exit(2)
}

fn die(prog: &str, msg: impl std::fmt::Display) -> ! {
    eprintln!("{prog}: error: {msg}");
    process::exit(1)
}
