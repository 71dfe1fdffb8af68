//! Which CPUs a process may run on: the sweep pins one-thread servers to
//! one core and the client to another, so that the two do not take turns
//! on the same core while a multi-core machine sits half idle.

use std::io;
use std::mem;

/// The CPUs this process may run on now (its affinity mask), lowest first.
pub fn allowed_cpus() -> io::Result<Vec<usize>> {
    // SAFETY: all-zero is a valid, empty cpu_set_t.
    let mut set: libc::cpu_set_t = unsafe { mem::zeroed() };
    // SAFETY: `set` is valid, writable storage of the size passed; pid 0 is
    // the calling thread.
    let rc = unsafe { libc::sched_getaffinity(0, mem::size_of::<libc::cpu_set_t>(), &mut set) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    let max = 8 * mem::size_of::<libc::cpu_set_t>();
    // SAFETY: CPU_ISSET reads the set at an index below its size in bits.
    Ok((0..max)
        .filter(|&cpu| unsafe { libc::CPU_ISSET(cpu, &set) })
        .collect())
}

/// Runs the calling thread, and the threads and processes it starts from
/// now on, on `cpu` alone. Call it first thing in `main`, before any
/// thread is started, to pin the whole process.
pub fn pin_to(cpu: usize) -> io::Result<()> {
    let max = 8 * mem::size_of::<libc::cpu_set_t>();
    if cpu >= max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("CPU {cpu} is beyond the {max} a CPU set holds"),
        ));
    }
    // SAFETY: all-zero is a valid, empty cpu_set_t.
    let mut set: libc::cpu_set_t = unsafe { mem::zeroed() };
    // SAFETY: `cpu` is below the set's size in bits (checked above);
    // sched_setaffinity reads `set`, of the size passed; pid 0 is the
    // calling thread.
    let rc = unsafe {
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, mem::size_of::<libc::cpu_set_t>(), &set)
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `--cpu N`: a CPU number.
pub fn parse_cpu(s: &str) -> Result<usize, String> {
    s.parse()
        .map_err(|_| format!("expected a CPU number such as 0 or 1, got {s:?}"))
}
