//! Which checks a sweep runs: `--only GLOB` by check id, and `--shard k/n`,
//! a stable split by a hash of the check id — the same check always lands in
//! the same shard, whatever the order of files or the machine.

use sha2::{Digest, Sha256};

/// `--shard k/n`: this process runs shard `index` (1-based) of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl Shard {
    /// Parses `k/n` with 1 ≤ k ≤ n.
    pub fn parse(text: &str) -> Result<Shard, String> {
        let err = || format!("--shard {text}: write k/n with 1 <= k <= n, e.g. 2/4");
        let (k, n) = text.split_once('/').ok_or_else(err)?;
        let index: u32 = k.trim().parse().map_err(|_| err())?;
        let count: u32 = n.trim().parse().map_err(|_| err())?;
        if index == 0 || count == 0 || index > count {
            return Err(err());
        }
        Ok(Shard { index, count })
    }

    /// Whether the check `id` belongs to this shard.
    pub fn contains(&self, id: &str) -> bool {
        let digest = Sha256::digest(id.as_bytes());
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        (u64::from_be_bytes(first) % u64::from(self.count)) as u32 == self.index - 1
    }
}

/// Glob match on check ids: `*` any run of characters, `?` one character.
pub fn glob_matches(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    // Iterative matcher with backtracking to the last `*`.
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((star_p, star_t)) = star {
            pi = star_p + 1;
            ti = star_t + 1;
            star = Some((star_p, star_t + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_are_disjoint_and_cover_everything() {
        let ids: Vec<String> = (0..1000).map(|i| format!("check-{i}")).collect();
        for count in [1, 2, 3, 7] {
            let shards: Vec<Shard> = (1..=count).map(|index| Shard { index, count }).collect();
            for id in &ids {
                let owners = shards.iter().filter(|s| s.contains(id)).count();
                assert_eq!(owners, 1, "{id} in {owners} of {count} shards");
            }
            // Roughly even: no shard is empty or holds everything.
            if count > 1 {
                for shard in &shards {
                    let n = ids.iter().filter(|id| shard.contains(id)).count();
                    assert!(n > 1000 / (count as usize * 3), "shard {shard:?} has {n}");
                }
            }
        }
    }

    #[test]
    fn shard_syntax_is_checked() {
        assert_eq!(Shard::parse("2/4").unwrap(), Shard { index: 2, count: 4 });
        for bad in ["0/4", "5/4", "1/0", "a/b", "3", ""] {
            assert!(Shard::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn globs() {
        assert!(glob_matches("api-*", "api-health"));
        assert!(glob_matches("*health", "api-health"));
        assert!(glob_matches("a?c", "abc"));
        assert!(glob_matches("*", ""));
        assert!(glob_matches("*-db-*", "eu-db-primary"));
        assert!(!glob_matches("api-*", "web-health"));
        assert!(!glob_matches("a?c", "ac"));
    }
}
