//! A slab of values addressed by slot index and generation.
//!
//! Freeing a slot bumps its generation, so a key handed out for an earlier
//! occupant of the slot no longer finds anything: that is what keeps a stale
//! token or timer id from reaching a newer owner.
//!
//! The slab gives memory back after a burst: once at most a quarter of its
//! slots are occupied (and enough removals have happened to pay for the
//! scan), the vacant slots past the last occupied one are cut off. Slots
//! created later start at a generation past every one cut off, so a key
//! from before the cut stays dead.

/// Marks the end of the free list.
const NIL: u32 = u32::MAX;
/// A slab this small is never shrunk.
const MIN_SHRINK: usize = 64;

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
    /// The generation a newly created slot starts at: past the generation
    /// of every slot cut off by [`shrink`](Slab::shrink).
    fresh_generation: u32,
    /// Removals since the last shrink, which pay for the next one.
    removals: usize,
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
            fresh_generation: 0,
            removals: 0,
        }
    }

    /// How many slots the slab has room for without reallocating.
    #[cfg(test)]
    fn capacity(&self) -> usize {
        self.slots.capacity()
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
        let generation = self.fresh_generation;
        self.slots.push(Slot {
            generation,
            state: State::Occupied(value),
        });
        self.len += 1;
        Ok((index as u32, generation))
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
        self.removals += 1;
        if self.worth_shrinking() {
            self.shrink();
        }
        match old {
            State::Occupied(v) => Some(v),
            State::Vacant { .. } => None,
        }
    }

    /// Whether [`shrink`](Slab::shrink) would give memory back at a cost
    /// the removals have paid for: the last slot is vacant, and the slab is
    /// empty, or at most a quarter full with an eighth of its slots removed
    /// since the last shrink.
    fn worth_shrinking(&self) -> bool {
        let slots = self.slots.len();
        let last_vacant = matches!(
            self.slots.last(),
            Some(Slot {
                state: State::Vacant { .. },
                ..
            })
        );
        slots >= MIN_SHRINK
            && last_vacant
            && (self.len == 0 || (self.len * 4 <= slots && self.removals * 8 >= slots))
    }

    /// Cuts off the vacant slots past the last occupied one, gives their
    /// memory back and rebuilds the free list, lowest index first. Costs
    /// one pass over the slots: the cut-off ones were paid for when they
    /// were created, the rest by the removals since the last shrink.
    fn shrink(&mut self) {
        self.removals = 0;
        let keep = self
            .slots
            .iter()
            .rposition(|s| matches!(s.state, State::Occupied(_)))
            .map_or(0, |i| i + 1);
        for slot in &self.slots[keep..] {
            self.fresh_generation = self.fresh_generation.max(slot.generation);
        }
        self.slots.truncate(keep);
        self.slots.shrink_to(keep.max(MIN_SHRINK / 2));
        self.free_head = NIL;
        for (index, slot) in self.slots.iter_mut().enumerate().rev() {
            if let State::Vacant { next_free } = &mut slot.state {
                *next_free = self.free_head;
                self.free_head = index as u32;
            }
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
    fn shrinks_after_a_burst_and_old_keys_stay_dead() {
        let mut slab = Slab::new(u32::MAX, u32::MAX);
        let keep = slab.insert(usize::MAX).unwrap();
        let keys: Vec<_> = (0..100_000).map(|i| slab.insert(i).unwrap()).collect();
        assert!(slab.capacity() >= 100_001);
        for (i, g) in &keys {
            slab.remove(*i, *g).unwrap();
        }
        assert_eq!(slab.len(), 1);
        assert!(
            slab.capacity() <= MIN_SHRINK,
            "capacity {}",
            slab.capacity()
        );
        assert_eq!(slab.get(keep.0, keep.1), Some(&usize::MAX));
        // New slots at the old indices do not answer to the old keys.
        let fresh: Vec<_> = (0..1000).map(|i| slab.insert(i).unwrap()).collect();
        for (i, g) in &keys[..1000] {
            assert_eq!(slab.get(*i, *g), None);
        }
        assert!(fresh.iter().all(|k| !keys.contains(k)));
        assert_eq!(slab.len(), 1001);
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
