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
pub fn repeated_hashes(hashes: &mut [u32]) -> Vec<u32> {
    sort_hashes(hashes);
    let mut repeated = Vec::new();
    for pair in hashes.windows(2) {
        if pair[0] == pair[1] && repeated.last() != Some(&pair[0]) {
            repeated.push(pair[0]);
        }
    }
    repeated
}

/// Sorts `hashes` in place: by their high 16 bits into their buckets (an
/// in-place radix pass, each value moved at most once), then each bucket
/// (some 15 values at a million) on its own. One pass over the values where
/// a comparison sort makes some twenty, on the main thread while the other
/// core waits for the sweep to start (100,000 ids took 10 ms with
/// `sort_unstable`), and no second buffer: at a million ids the values are
/// 4 MB, and a sweep's memory is bounded.
fn sort_hashes(hashes: &mut [u32]) {
    /// Below this, a comparison sort costs less than the bucket tables.
    const RADIX_MIN: usize = 4096;
    const BUCKETS: usize = 1 << 16;
    if hashes.len() < RADIX_MIN || u32::try_from(hashes.len()).is_err() {
        hashes.sort_unstable();
        return;
    }
    let bucket = |h: u32| (h >> 16) as usize;
    let mut ends = vec![0u32; BUCKETS];
    for &h in hashes.iter() {
        ends[bucket(h)] += 1;
    }
    // `next[b]`: the first slot of bucket `b` not yet holding one of its
    // own values; `ends[b]`: one past its last slot.
    let mut next = vec![0u32; BUCKETS];
    let mut at = 0u32;
    for b in 0..BUCKETS {
        next[b] = at;
        at += ends[b];
        ends[b] = at;
    }
    let starts = next.clone();
    for b in 0..BUCKETS {
        while next[b] < ends[b] {
            // Carry the value found here to its bucket, and the one it
            // displaces to its own, until one belongs here.
            let mut value = hashes[next[b] as usize];
            let mut home = bucket(value);
            while home != b {
                std::mem::swap(&mut value, &mut hashes[next[home] as usize]);
                next[home] += 1;
                home = bucket(value);
            }
            hashes[next[b] as usize] = value;
            next[b] += 1;
        }
    }
    for b in 0..BUCKETS {
        hashes[starts[b] as usize..ends[b] as usize].sort_unstable();
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
        // Values spread over every bucket, and crowded into four (the
        // in-place pass then carries long chains).
        for (len, mask) in [
            (0, u32::MAX),
            (1, u32::MAX),
            (2, u32::MAX),
            (4095, u32::MAX),
            (4096, u32::MAX),
            (50_000, u32::MAX),
            (50_000, 0x0003_ffff),
        ] {
            let mut hashes: Vec<u32> = (0..len).map(|_| next() & mask).collect();
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
