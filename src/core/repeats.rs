//! Finding a repeated check id among a million without a map of strings:
//! 4-byte hashes first, sorted, then only the ids whose hash repeats.

/// A 4-byte hash of a check id (SipHash with fixed keys, folded): repeats
/// among a million ids are looked for on these, then confirmed on the ids.
pub fn id_hash(id: &str) -> u32 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::hash::DefaultHasher::new();
    id.hash(&mut hasher);
    let hash = hasher.finish();
    (hash ^ (hash >> 32)) as u32
}

/// The hashes ([`id_hash`]) found more than once among `ids` (`count` of
/// them), sorted: every repeated id has its hash there, with some hundred
/// chance collisions at a million ids. 4 bytes per id, held only here.
pub fn repeated_id_hashes<'a>(ids: impl Iterator<Item = &'a str>, count: usize) -> Vec<u32> {
    let mut hashes: Vec<u32> = Vec::with_capacity(count);
    hashes.extend(ids.map(id_hash));
    hashes.sort_unstable();
    let mut repeated = Vec::new();
    for pair in hashes.windows(2) {
        if pair[0] == pair[1] && repeated.last() != Some(&pair[0]) {
            repeated.push(pair[0]);
        }
    }
    repeated
}

#[cfg(test)]
/// Two different ids with the same [`id_hash`] (found by search: the
/// hash is fixed, so they always collide).
pub(crate) fn colliding_ids() -> (String, String) {
    let mut seen = std::collections::HashMap::new();
    for n in 0.. {
        let id = format!("id{n}");
        if let Some(other) = seen.insert(id_hash(&id), id.clone()) {
            return (other, id);
        }
    }
    unreachable!()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_hashes_name_every_repeat_once_and_nothing_else() {
        let ids = ["a", "b", "a", "c", "a", "b"];
        let repeated = repeated_id_hashes(ids.into_iter(), ids.len());
        let mut expected = vec![id_hash("a"), id_hash("b")];
        expected.sort_unstable();
        assert_eq!(repeated, expected);
        assert!(repeated_id_hashes(["a", "b"].into_iter(), 2).is_empty());
        let (x, y) = colliding_ids();
        assert_ne!(x, y);
        assert_eq!(
            repeated_id_hashes([x.as_str(), y.as_str()].into_iter(), 2).len(),
            1
        );
    }
}
