//! The delays between attempts: exponential backoff with optional jitter,
//! computed from a step's [`RetryPolicy`], never longer than its `max`.

use std::time::Duration;

use crate::core::{Failure, FailureClass};
use crate::runbook::model::RetryPolicy;

/// Whether a failed attempt is worth another, decided in one place from the
/// failure's class and the check's kind: `None` retries, `Some(why)` does not.
pub fn no_retry_reason(kind: &str, failure: &Failure) -> Option<String> {
    if let Some(why) = &failure.permanent {
        return Some(why.clone());
    }
    let why = match failure.class {
        FailureClass::Auth => "the credentials were refused; retrying will not change them",
        FailureClass::NotFound => "it does not exist; waiting will not create it",
        FailureClass::Dns => "the name does not resolve; retrying will not create it",
        FailureClass::Config => "the step cannot run as written; retrying will not change it",
        FailureClass::Security => "a security finding is not a transient failure",
        // A secret's value is read once per run: asking again gives the same answer.
        _ if !kind_retries(kind) => kind_no_retry_reason(kind).unwrap_or("it never retries"),
        FailureClass::Refused
        | FailureClass::Timeout
        | FailureClass::Tls
        | FailureClass::Protocol
        | FailureClass::Expectation
        | FailureClass::Io
        | FailureClass::Interrupted => return None,
    };
    Some(why.to_string())
}

/// The delay before each retry, in order: `policy.retries` values, each at
/// most `backoff.max` (see [`backoff_schedule_seeded`]).
pub fn backoff_schedule(policy: &RetryPolicy) -> Vec<Duration> {
    backoff_schedule_seeded(policy, fastrand::u64(..))
}

/// The schedule with jitter drawn from `seed`. The base delay doubles from
/// `initial` and stops at `max`. Without jitter each delay is the base.
/// With jitter each delay is drawn uniformly from `[hi/2, hi]` where `hi` is
/// twice the base but never more than `max`: up to one base delay is added
/// while below the cap, and at the cap runners still spread over
/// `[max/2, max]` instead of retrying in lockstep. No delay exceeds `max`,
/// which `verify` checks against the policy recorded in `run.start`.
pub fn backoff_schedule_seeded(policy: &RetryPolicy, seed: u64) -> Vec<Duration> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let initial = policy.backoff.initial.0;
    let max = policy.backoff.max.0.max(initial);
    let mut base = initial;
    let mut delays = Vec::with_capacity(policy.retries as usize);
    for _ in 0..policy.retries {
        let capped = base.min(max);
        let delay = if policy.backoff.jitter {
            let hi = capped.saturating_mul(2).min(max);
            let lo = (hi / 2).min(capped);
            lo + (hi - lo).mul_f64(rng.f64())
        } else {
            capped
        };
        delays.push(delay.min(max));
        base = base.saturating_mul(2);
    }
    delays
}

/// Whether a check kind ever retries a failed attempt: `false` for kinds
/// whose every failure is final (a `secret` is read once per run). The
/// engine ([`no_retry_reason`]) and `plan` both follow this rule.
pub fn kind_retries(kind: &str) -> bool {
    kind != "secret"
}

/// Why `kind` never retries, when [`kind_retries`] is false.
pub fn kind_no_retry_reason(kind: &str) -> Option<&'static str> {
    (!kind_retries(kind)).then_some("a secret's value does not change during a run")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::duration::HumanDuration;
    use crate::runbook::model::Backoff;

    fn policy(retries: u32, initial_ms: u64, max_ms: u64, jitter: bool) -> RetryPolicy {
        RetryPolicy {
            retries,
            backoff: Backoff {
                initial: HumanDuration(Duration::from_millis(initial_ms)),
                max: HumanDuration(Duration::from_millis(max_ms)),
                jitter,
            },
            timeout: Duration::from_secs(10),
        }
    }

    #[test]
    fn doubles_up_to_the_cap() {
        let delays: Vec<u128> = backoff_schedule(&policy(5, 100, 500, false))
            .iter()
            .map(Duration::as_millis)
            .collect();
        assert_eq!(delays, vec![100, 200, 400, 500, 500]);
    }

    #[test]
    fn one_delay_per_retry() {
        assert_eq!(backoff_schedule(&policy(0, 100, 500, false)).len(), 0);
        assert_eq!(backoff_schedule(&policy(2, 100, 500, true)).len(), 2);
    }

    #[test]
    fn jitter_never_exceeds_max_over_many_seeds() {
        // The reported case: initial 5s, max 15s, 4 retries.
        for (initial, max) in [(5_000, 15_000), (100, 150), (1_000, 1_000), (7, 10_000)] {
            let p = policy(8, initial, max, true);
            for seed in 0..2_000u64 {
                let delays = backoff_schedule_seeded(&p, seed);
                assert_eq!(delays.len(), 8);
                for d in &delays {
                    assert!(
                        *d <= Duration::from_millis(max),
                        "seed {seed}: {delays:?} > {max} ms"
                    );
                    assert!(
                        *d >= Duration::from_millis(initial.min(max) / 2),
                        "{delays:?}"
                    );
                }
            }
        }
        // At the cap, delays still spread out.
        let at_cap: std::collections::HashSet<Duration> = (0..50)
            .map(|seed| backoff_schedule_seeded(&policy(6, 1_000, 2_000, true), seed)[5])
            .collect();
        assert!(at_cap.len() > 10, "{at_cap:?}");
    }

    #[test]
    fn secret_is_the_kind_that_never_retries() {
        assert!(!kind_retries("secret"));
        assert!(kind_retries("http") && kind_retries("command"));
        let failure = Failure::new(FailureClass::Expectation, "x");
        assert!(no_retry_reason("secret", &failure).is_some());
        assert!(no_retry_reason("http", &failure).is_none());
    }

    #[test]
    fn jitter_adds_at_most_one_base_delay() {
        for _ in 0..50 {
            let delays = backoff_schedule(&policy(2, 100, 10_000, true));
            assert!(
                delays[0] >= Duration::from_millis(100) && delays[0] <= Duration::from_millis(200),
                "{delays:?}"
            );
            assert!(
                delays[1] >= Duration::from_millis(200) && delays[1] <= Duration::from_millis(400),
                "{delays:?}"
            );
        }
    }
}
