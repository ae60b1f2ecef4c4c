//! The delays between attempts: exponential backoff with optional jitter,
//! computed by `backon` from a step's [`RetryPolicy`].

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};

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
        _ if kind == "secret" => "a secret's value does not change during a run",
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

/// The delay before each retry, in order: `policy.retries` values.
pub fn backoff_schedule(policy: &RetryPolicy) -> Vec<Duration> {
    let mut builder = ExponentialBuilder::default()
        .with_min_delay(policy.backoff.initial.0)
        .with_max_delay(policy.backoff.max.0.max(policy.backoff.initial.0))
        .with_factor(2.0)
        .with_max_times(policy.retries as usize);
    if policy.backoff.jitter {
        builder = builder.with_jitter();
    }
    builder.build().collect()
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
