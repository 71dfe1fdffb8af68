//! A slab of values addressed by slot index and generation.
//!
//! Freeing a slot bumps its generation, so a key handed out for an earlier
//! occupant of the slot no longer finds anything: that is what keeps a stale
//! token or timer id from reaching a newer owner.

/// Marks the end of the free list.
const NIL: u32 = u32::MAX;

#[derive(Debug)]
enum State<T> {
    Occupied(T),
    Vacant { next_free: u32 },
}

#[derive(Debug)]
struct Slot<T> {
    generation: u32,
    state: State<T>,
}

/// Values addressed by `(index, generation)`; freed slots are reused, last
/// freed first.
#[derive(Debug)]
pub(crate) struct Slab<T> {
    slots: Vec<Slot<T>>,
    free_head: u32,
    len: usize,
    /// Indices stay below this bound (`NIL` at most: it ends the free list).
    max_slots: u32,
    /// Generations wrap within this mask (it must fit the key's bits).
    generation_mask: u32,
}

impl<T> Slab<T> {
    /// An empty slab whose indices stay below `max_slots` (at most
    /// `u32::MAX`) and whose generations wrap within `generation_mask`.
    pub(crate) fn new(max_slots: u32, generation_mask: u32) -> Slab<T> {
        Slab {
            slots: Vec::new(),
            free_head: NIL,
            len: 0,
            max_slots,
            generation_mask,
        }
    }

    /// How many slots are occupied.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Stores `value` and returns its `(index, generation)`, or gives the
    /// value back when every index is taken.
    pub(crate) fn insert(&mut self, value: T) -> Result<(u32, u32), T> {
        if self.free_head != NIL {
            let index = self.free_head;
            let slot = &mut self.slots[index as usize];
            if let State::Vacant { next_free } = slot.state {
                self.free_head = next_free;
                slot.state = State::Occupied(value);
                self.len += 1;
                return Ok((index, slot.generation));
            }
            // The free list only ever links vacant slots; should that ever
            // break, forget the list rather than overwrite a live value.
            debug_assert!(false, "free list points at an occupied slot");
            self.free_head = NIL;
        }
        let index = self.slots.len();
        if index >= self.max_slots as usize {
            return Err(value);
        }
        self.slots.push(Slot {
            generation: 0,
            state: State::Occupied(value),
        });
        self.len += 1;
        Ok((index as u32, 0))
    }

    /// The value at `index` if its generation is still `generation`.
    pub(crate) fn get(&self, index: u32, generation: u32) -> Option<&T> {
        match self.slots.get(index as usize) {
            Some(Slot {
                generation: g,
                state: State::Occupied(v),
            }) if *g == generation => Some(v),
            _ => None,
        }
    }

    /// The value at `index` if its generation is still `generation`.
    pub(crate) fn get_mut(&mut self, index: u32, generation: u32) -> Option<&mut T> {
        match self.slots.get_mut(index as usize) {
            Some(Slot {
                generation: g,
                state: State::Occupied(v),
            }) if *g == generation => Some(v),
            _ => None,
        }
    }

    /// Takes the value out and frees its slot under a new generation.
    pub(crate) fn remove(&mut self, index: u32, generation: u32) -> Option<T> {
        let slot = self.slots.get_mut(index as usize)?;
        if slot.generation != generation || !matches!(slot.state, State::Occupied(_)) {
            return None;
        }
        let old = std::mem::replace(
            &mut slot.state,
            State::Vacant {
                next_free: self.free_head,
            },
        );
        slot.generation = slot.generation.wrapping_add(1) & self.generation_mask;
        self.free_head = index;
        self.len -= 1;
        match old {
            State::Occupied(v) => Some(v),
            State::Vacant { .. } => None,
        }
    }

    /// The keys of every occupied slot, for a caller that then removes them.
    pub(crate) fn keys(&self) -> impl Iterator<Item = (u32, u32)> + '_ {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, s)| matches!(s.state, State::Occupied(_)))
            .map(|(i, s)| (i as u32, s.generation))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reuse_bumps_the_generation() {
        let mut slab = Slab::new(16, u32::MAX);
        let (i, g) = slab.insert("a").unwrap();
        assert_eq!(slab.get(i, g), Some(&"a"));
        assert_eq!(slab.remove(i, g), Some("a"));
        assert_eq!(slab.get(i, g), None);
        assert_eq!(slab.remove(i, g), None, "a second remove finds nothing");
        let (i2, g2) = slab.insert("b").unwrap();
        assert_eq!(i2, i, "the freed slot is reused");
        assert_ne!(g2, g);
        assert_eq!(slab.get(i, g), None, "the old key stays dead");
        assert_eq!(slab.get(i2, g2), Some(&"b"));
        assert_eq!(slab.len(), 1);
    }

    #[test]
    fn full_slab_gives_the_value_back() {
        let mut slab = Slab::new(2, u32::MAX);
        slab.insert(1).unwrap();
        slab.insert(2).unwrap();
        assert_eq!(slab.insert(3), Err(3));
    }

    #[test]
    fn generation_wraps_within_the_mask() {
        let mut slab = Slab::new(1, 0b11);
        let mut seen = Vec::new();
        for _ in 0..5 {
            let (i, g) = slab.insert(()).unwrap();
            seen.push(g);
            slab.remove(i, g).unwrap();
        }
        assert_eq!(seen, [0, 1, 2, 3, 0]);
    }

    #[test]
    fn keys_lists_occupied_slots() {
        let mut slab = Slab::new(8, u32::MAX);
        let a = slab.insert('a').unwrap();
        let b = slab.insert('b').unwrap();
        let c = slab.insert('c').unwrap();
        slab.remove(b.0, b.1).unwrap();
        let keys: Vec<_> = slab.keys().collect();
        assert_eq!(keys, [a, c]);
    }
}
