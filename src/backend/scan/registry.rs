//! The descriptor → registration map that poll and select keep in user
//! space (epoll keeps its own in the kernel).

use std::os::fd::RawFd;

use crate::{Error, Interest, Mode, Result, Token};

/// One registration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) fd: RawFd,
    pub(crate) token: Token,
    pub(crate) interest: Interest,
    pub(crate) mode: Mode,
    /// False once a oneshot registration has reported; `modify` re-arms it.
    pub(crate) armed: bool,
}

/// Registrations in a dense vector (the order the kernel set is built in),
/// plus a table indexed by descriptor number for O(1) lookup: descriptor
/// numbers are small and dense, so a table beats hashing.
#[derive(Debug, Default)]
pub(crate) struct Registry {
    entries: Vec<Entry>,
    /// `slots[fd]` is the entry's index in `entries`, or `EMPTY`.
    slots: Vec<u32>,
    /// Moves on with every change, so a kernel set built from these
    /// entries knows when it is out of date.
    generation: u64,
}

const EMPTY: u32 = u32::MAX;

impl Registry {
    pub(crate) fn entries(&self) -> &[Entry] {
        &self.entries
    }

    fn index(&self, fd: RawFd) -> Option<usize> {
        let slot = *self.slots.get(usize::try_from(fd).ok()?)?;
        (slot != EMPTY).then_some(slot as usize)
    }

    /// The number of changes made so far.
    pub(crate) fn generation(&self) -> u64 {
        self.generation
    }

    pub(crate) fn get(&self, fd: RawFd) -> Option<&Entry> {
        let i = self.index(fd)?;
        Some(&self.entries[i])
    }

    fn get_mut(&mut self, fd: RawFd) -> Option<&mut Entry> {
        let i = self.index(fd)?;
        self.generation += 1;
        Some(&mut self.entries[i])
    }

    /// Disarms a oneshot registration after it has reported.
    pub(crate) fn disarm(&mut self, fd: RawFd) {
        if let Some(entry) = self.get_mut(fd) {
            entry.armed = false;
        }
    }

    /// Adds a registration for a descriptor that must not be registered yet.
    pub(crate) fn insert(
        &mut self,
        fd: RawFd,
        token: Token,
        interest: Interest,
        mode: Mode,
    ) -> Result<()> {
        let slot = usize::try_from(fd).map_err(|_| Error::InvalidFd { fd })?;
        if self.index(fd).is_some() {
            return Err(Error::AlreadyRegistered { fd });
        }
        if slot >= self.slots.len() {
            self.slots.resize(slot + 1, EMPTY);
        }
        self.slots[slot] = self.entries.len() as u32;
        self.generation += 1;
        self.entries.push(Entry {
            fd,
            token,
            interest,
            mode,
            armed: true,
        });
        Ok(())
    }

    /// Replaces a registration and re-arms it.
    pub(crate) fn modify(
        &mut self,
        fd: RawFd,
        token: Token,
        interest: Interest,
        mode: Mode,
    ) -> Result<()> {
        let entry = self.get_mut(fd).ok_or(Error::NotRegistered { fd })?;
        entry.token = token;
        entry.interest = interest;
        entry.mode = mode;
        entry.armed = true;
        Ok(())
    }

    /// Removes a registration. The last entry takes its place.
    pub(crate) fn remove(&mut self, fd: RawFd) -> Result<Entry> {
        let i = self.index(fd).ok_or(Error::NotRegistered { fd })?;
        let entry = self.entries.swap_remove(i);
        self.generation += 1;
        self.slots[fd as usize] = EMPTY;
        if let Some(moved) = self.entries.get(i) {
            self.slots[moved.fd as usize] = i as u32;
        }
        Ok(entry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_modify_remove_keep_the_table_consistent() {
        let mut r = Registry::default();
        for fd in [5, 3, 9] {
            r.insert(fd, Token(fd as usize), Interest::READABLE, Mode::Level)
                .unwrap();
        }
        assert!(matches!(
            r.insert(3, Token(0), Interest::WRITABLE, Mode::Level),
            Err(Error::AlreadyRegistered { fd: 3 })
        ));
        assert_eq!(r.get(3).unwrap().interest, Interest::READABLE);
        r.remove(5).unwrap();
        assert_eq!(
            r.get(9).unwrap().token,
            Token(9),
            "moved entry is still found"
        );
        assert!(r.get(5).is_none());
        assert!(matches!(r.remove(5), Err(Error::NotRegistered { fd: 5 })));
        let before = r.generation();
        r.disarm(9);
        assert!(!r.get(9).unwrap().armed);
        assert!(r.generation() > before, "disarming is a change");
        r.modify(9, Token(1), Interest::WRITABLE, Mode::Oneshot)
            .unwrap();
        let e = *r.get(9).unwrap();
        assert_eq!(
            (e.token, e.interest, e.mode, e.armed),
            (Token(1), Interest::WRITABLE, Mode::Oneshot, true)
        );
        assert!(matches!(
            r.modify(4, Token(0), Interest::READABLE, Mode::Level),
            Err(Error::NotRegistered { fd: 4 })
        ));
        assert!(matches!(
            r.insert(-1, Token(0), Interest::READABLE, Mode::Level),
            Err(Error::InvalidFd { fd: -1 })
        ));
        assert_eq!(r.entries().len(), 2);
    }
}
