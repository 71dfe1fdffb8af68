//! `select(2)`: fixed-size bitmaps.

use std::io;
use std::os::fd::RawFd;
use std::ptr;
use std::time::Duration;

use super::{syscall, timeval};

/// The largest descriptor number plus one that select can watch.
pub(crate) const FD_SETSIZE: usize = libc::FD_SETSIZE;

/// Bits in one word of an `fd_set`.
const WORD_BITS: usize = libc::c_ulong::BITS as usize;

/// An `fd_set` we can index safely: glibc's and the kernel's layout, an
/// array of `unsigned long` where descriptor `d` is bit `d % WORD_BITS` of
/// word `d / WORD_BITS`. Owning the bits lets a wait copy and pass only the
/// words below `nfds` instead of all 128 bytes, with no `unsafe` FD_SET.
#[derive(Clone, Copy)]
#[repr(C)]
pub(crate) struct FdSet([libc::c_ulong; FD_SETSIZE / WORD_BITS]);

// The kernel reads and writes `FdSet`s through `*mut fd_set`.
const _: () = assert!(std::mem::size_of::<FdSet>() == std::mem::size_of::<libc::fd_set>());
const _: () = assert!(std::mem::align_of::<FdSet>() >= std::mem::align_of::<libc::fd_set>());

impl FdSet {
    pub(crate) const EMPTY: FdSet = FdSet([0; FD_SETSIZE / WORD_BITS]);

    /// Adds `fd`, which must be in `0..FD_SETSIZE` (the registration rules
    /// refuse others); out of range panics rather than corrupting memory.
    pub(crate) fn add(&mut self, fd: RawFd) {
        let fd = fd as usize;
        self.0[fd / WORD_BITS] |= 1 << (fd % WORD_BITS);
    }

    pub(crate) fn has(&self, fd: RawFd) -> bool {
        let fd = fd as usize;
        self.0[fd / WORD_BITS] & (1 << (fd % WORD_BITS)) != 0
    }

    /// Copies the words that hold descriptors below `nfds` from `from`.
    pub(crate) fn copy_below(&mut self, from: &FdSet, nfds: usize) {
        let words = (nfds + WORD_BITS - 1) / WORD_BITS;
        self.0[..words].copy_from_slice(&from.0[..words]);
    }
}

fn as_ptr(set: Option<&mut FdSet>) -> *mut libc::fd_set {
    set.map_or(ptr::null_mut(), |s| (s as *mut FdSet).cast())
}

/// One `select` over descriptors below `nfds` (at most `FD_SETSIZE`), with
/// microsecond timeout resolution (rounded up); an unused set is passed as
/// null. Returns the kernel's count of hits, each set counted apart.
pub(crate) fn select(
    nfds: usize,
    read: Option<&mut FdSet>,
    write: Option<&mut FdSet>,
    except: Option<&mut FdSet>,
    timeout: Option<Duration>,
) -> io::Result<usize> {
    let nfds = nfds.min(FD_SETSIZE) as libc::c_int;
    let mut tv = timeout.map(timeval);
    let tv_ptr = tv
        .as_mut()
        .map_or(ptr::null_mut(), |t| t as *mut libc::timeval);
    // SAFETY: each set pointer is null or points to a live, writable `FdSet`
    // laid out as an `fd_set` (asserted above); `nfds` is at most
    // FD_SETSIZE, so the kernel touches only those bits; `tv_ptr` is null or
    // points to `tv`, which outlives the call.
    let n = syscall!(select(
        nfds,
        as_ptr(read),
        as_ptr(write),
        as_ptr(except),
        tv_ptr
    ))?;
    Ok(n as usize)
}
