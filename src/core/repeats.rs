//! Finding a repeated check id among a million without a map of strings:
//! 4-byte hashes first, sorted, then only the ids whose hash repeats.

use std::hash::BuildHasher;

/// A 4-byte hash of a check id (foldhash with a fixed seed, folded):
/// repeats among a million ids are looked for on these, then confirmed on
/// the ids. Fixed, so that the same id always has the same hash, on any
/// thread.
pub fn id_hash(id: &str) -> u32 {
    static STATE: foldhash::fast::FixedState = foldhash::fast::FixedState::with_seed(0x72756e70);
    let hash = STATE.hash_one(id);
    (hash ^ (hash >> 32)) as u32
}

/// The hashes ([`id_hash`]) found more than once among `ids` (`count` of
/// them), sorted: every repeated id has its hash there, with some hundred
/// chance collisions at a million ids. 4 bytes per id, held only here.
pub fn repeated_id_hashes<'a>(ids: impl Iterator<Item = &'a str>, count: usize) -> Vec<u32> {
    let mut hashes: Vec<u32> = Vec::with_capacity(count);
    hashes.extend(ids.map(id_hash));
    repeated_hashes(&mut hashes)
}

/// The values found more than once in `hashes`, sorted; `hashes` is left
/// sorted.
pub fn repeated_hashes(hashes: &mut Vec<u32>) -> Vec<u32> {
    sort_hashes(hashes);
    let mut repeated = Vec::new();
    for pair in hashes.windows(2) {
        if pair[0] == pair[1] && repeated.last() != Some(&pair[0]) {
            repeated.push(pair[0]);
        }
    }
    repeated
}

/// Sorts `hashes` by their two 16-bit halves, low then high (a radix sort):
/// two passes over them where a comparison sort makes some twenty, on the
/// main thread while the other cores wait for the sweep to start (100,000
/// ids took 10 ms with `sort_unstable`).
fn sort_hashes(hashes: &mut Vec<u32>) {
    /// Below this, a comparison sort costs less than the two count tables.
    const RADIX_MIN: usize = 4096;
    if hashes.len() < RADIX_MIN {
        hashes.sort_unstable();
        return;
    }
    let mut sorted = vec![0u32; hashes.len()];
    for shift in [0u32, 16] {
        let digit = |h: u32| ((h >> shift) & 0xffff) as usize;
        let mut starts = vec![0usize; 1 << 16];
        for &h in hashes.iter() {
            starts[digit(h)] += 1;
        }
        let mut at = 0;
        for start in starts.iter_mut() {
            let count = *start;
            *start = at;
            at += count;
        }
        for &h in hashes.iter() {
            let slot = &mut starts[digit(h)];
            sorted[*slot] = h;
            *slot += 1;
        }
        std::mem::swap(hashes, &mut sorted);
    }
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
    fn hashes_are_sorted_by_radix_as_by_comparison_and_repeats_found_at_any_size() {
        // Pseudo-random, with repeats: sizes on both sides of the radix bound.
        let mut state = 0x9e37_79b9_u32;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state
        };
        for len in [0, 1, 2, 4095, 4096, 50_000] {
            let mut hashes: Vec<u32> = (0..len).map(|_| next()).collect();
            // Every 7th value again, and a few around the halves' edges.
            let again: Vec<u32> = hashes.iter().step_by(7).copied().collect();
            hashes.extend(again);
            hashes.extend([0, u32::MAX, 0xffff, 0x1_0000, 0, u32::MAX]);
            let mut expected = hashes.clone();
            expected.sort_unstable();
            let mut radix = hashes.clone();
            sort_hashes(&mut radix);
            assert_eq!(radix, expected, "{len} hashes");
            let mut repeats: Vec<u32> = expected
                .windows(2)
                .filter(|p| p[0] == p[1])
                .map(|p| p[0])
                .collect();
            repeats.dedup();
            assert_eq!(repeated_hashes(&mut hashes), repeats, "{len} hashes");
            assert_eq!(hashes, expected, "left sorted");
        }
    }

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
