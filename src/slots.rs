//! Counted places per key (an address, a principal): at most `max` held at
//! once, each freed when its [`Slot`] is dropped. Used for the per-address
//! connection cap, the per-principal stream cap and the per-principal
//! `maxConcurrentRequests`.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex, PoisonError};

/// Places held per key; keys with none held are not kept.
pub(crate) struct Places<K: Hash + Eq + Clone> {
    held: Mutex<HashMap<K, usize>>,
}

impl<K: Hash + Eq + Clone> Default for Places<K> {
    fn default() -> Self {
        Places { held: Mutex::new(HashMap::new()) }
    }
}

/// One place of a key; dropping it frees the place.
pub(crate) struct Slot<K: Hash + Eq + Clone> {
    places: Arc<Places<K>>,
    key: K,
}

impl<K: Hash + Eq + Clone> Places<K> {
    /// A place for `key` if it holds fewer than `max`.
    pub(crate) fn take(self: &Arc<Self>, key: K, max: usize) -> Option<Slot<K>> {
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        let count = held.entry(key.clone()).or_insert(0);
        if *count >= max {
            if *count == 0 {
                held.remove(&key);
            }
            return None;
        }
        *count += 1;
        Some(Slot { places: Arc::clone(self), key })
    }
}

impl<K: Hash + Eq + Clone> Places<K> {
    /// Places held now, over all keys.
    pub(crate) fn total(&self) -> usize {
        self.held.lock().unwrap_or_else(PoisonError::into_inner).values().sum()
    }
}

impl<K: Hash + Eq + Clone> Drop for Slot<K> {
    fn drop(&mut self) {
        let mut held = self.places.held.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = held.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                held.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_holds_at_most_its_cap_and_dropping_frees_a_place() {
        let places = Arc::new(Places::default());
        let held: Vec<_> = (0..3).map(|_| places.take("a", 3).unwrap()).collect();
        assert!(places.take("a", 3).is_none());
        assert!(places.take("b", 3).is_some());
        drop(held);
        assert!(places.take("a", 3).is_some());
        assert!(places.take("z", 0).is_none());
        assert!(places.held.lock().unwrap().get("z").is_none(), "a refused key is not kept");
    }
}
