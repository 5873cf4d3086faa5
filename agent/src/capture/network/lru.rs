//! A bounded map with least-recently-used order: a `HashMap` from key to slot
//! index plus a slab of slots linked in recency order. O(1) lookup, touch,
//! insert and eviction, one allocation for the whole table (no per-entry boxes),
//! so 100k flows stay within a few megabytes.
//!
//! The std `HashMap` keeps its randomly seeded SipHash: flow keys come from the
//! network, so the hash must resist crafted collisions.

use std::collections::HashMap;
use std::hash::Hash;

const NONE: u32 = u32::MAX;

struct Slot<K, V> {
    key: K,
    value: V,
    /// Towards the most recently used end.
    newer: u32,
    /// Towards the least recently used end.
    older: u32,
}

/// A map holding at most `capacity` entries, evicting the least recently used.
pub struct LruMap<K, V> {
    index: HashMap<K, u32>,
    slots: Vec<Slot<K, V>>,
    /// Unused slot indexes (after removals).
    free: Vec<u32>,
    newest: u32,
    oldest: u32,
    capacity: usize,
}

impl<K: Hash + Eq + Clone, V: Default> LruMap<K, V> {
    /// An empty map for at most `capacity` entries (at least one).
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.clamp(1, NONE as usize - 1);
        LruMap {
            index: HashMap::new(),
            slots: Vec::new(),
            free: Vec::new(),
            newest: NONE,
            oldest: NONE,
            capacity,
        }
    }

    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// The value for `key`, marked most recently used.
    pub fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        let slot = *self.index.get(key)?;
        self.unlink(slot);
        self.push_newest(slot);
        Some(&mut self.slots[slot as usize].value)
    }

    /// Inserts (or replaces) `key` as the most recently used entry, returning the
    /// entry evicted to make room, if any.
    pub fn insert(&mut self, key: K, value: V) -> Option<(K, V)> {
        if let Some(existing) = self.get_mut(&key) {
            *existing = value;
            return None;
        }
        let evicted = if self.index.len() >= self.capacity {
            self.pop_oldest()
        } else {
            None
        };
        let slot = Slot {
            key: key.clone(),
            value,
            newer: NONE,
            older: NONE,
        };
        let index = match self.free.pop() {
            Some(index) => {
                self.slots[index as usize] = slot;
                index
            }
            None => {
                self.slots.push(slot);
                (self.slots.len() - 1) as u32
            }
        };
        self.index.insert(key, index);
        self.push_newest(index);
        evicted
    }

    /// The least recently used entry, without touching it.
    pub fn peek_oldest(&self) -> Option<(&K, &V)> {
        let slot = self.slots.get(self.oldest as usize)?;
        Some((&slot.key, &slot.value))
    }

    /// Removes and returns the least recently used entry.
    pub fn pop_oldest(&mut self) -> Option<(K, V)> {
        if self.oldest == NONE {
            return None;
        }
        let slot = self.oldest;
        let key = self.slots[slot as usize].key.clone();
        self.remove(&key).map(|value| (key, value))
    }

    /// Removes `key`, returning its value.
    pub fn remove(&mut self, key: &K) -> Option<V> {
        let slot = self.index.remove(key)?;
        self.unlink(slot);
        self.free.push(slot);
        Some(std::mem::take(&mut self.slots[slot as usize].value))
    }

    /// Every entry, oldest first.
    pub fn iter_oldest_first(&self) -> impl Iterator<Item = (&K, &V)> {
        let mut next = self.oldest;
        std::iter::from_fn(move || {
            let slot = self.slots.get(next as usize)?;
            next = slot.newer;
            Some((&slot.key, &slot.value))
        })
    }

    fn unlink(&mut self, slot: u32) {
        let (newer, older) = {
            let s = &self.slots[slot as usize];
            (s.newer, s.older)
        };
        match self.slots.get_mut(newer as usize) {
            Some(n) => n.older = older,
            None => self.newest = older,
        }
        match self.slots.get_mut(older as usize) {
            Some(o) => o.newer = newer,
            None => self.oldest = newer,
        }
    }

    fn push_newest(&mut self, slot: u32) {
        let previous = self.newest;
        {
            let s = &mut self.slots[slot as usize];
            s.older = previous;
            s.newer = NONE;
        }
        match self.slots.get_mut(previous as usize) {
            Some(p) => p.newer = slot,
            None => self.oldest = slot,
        }
        self.newest = slot;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evicts_the_least_recently_used() {
        let mut map: LruMap<u32, u64> = LruMap::new(3);
        assert!(map.insert(1, 10).is_none());
        assert!(map.insert(2, 20).is_none());
        assert!(map.insert(3, 30).is_none());
        assert_eq!(map.get_mut(&1).copied(), Some(10));
        assert_eq!(map.insert(4, 40), Some((2, 20)));
        assert!(map.insert(4, 41).is_none(), "replacing evicts nothing");
        assert_eq!(map.get_mut(&4).copied(), Some(41));
        assert_eq!(map.len(), 3);
        assert_eq!(map.peek_oldest(), Some((&3, &30)));
        let order: Vec<u32> = map.iter_oldest_first().map(|(k, _)| *k).collect();
        assert_eq!(order, vec![3, 1, 4]);
    }

    #[test]
    fn removal_frees_slots_for_reuse() {
        let mut map: LruMap<u32, u64> = LruMap::new(2);
        map.insert(1, 10);
        map.insert(2, 20);
        assert_eq!(map.remove(&1), Some(10));
        assert_eq!(map.remove(&1), None);
        assert!(map.insert(3, 30).is_none(), "room after a removal");
        assert_eq!(map.pop_oldest(), Some((2, 20)));
        assert_eq!(map.pop_oldest(), Some((3, 30)));
        assert_eq!(map.pop_oldest(), None);
        assert!(map.is_empty());
        assert!(map.peek_oldest().is_none());
        map.insert(5, 50);
        assert_eq!(map.slots.len(), 2, "slots are reused, not grown");
        assert_eq!(map.peek_oldest(), Some((&5, &50)));
    }
}
