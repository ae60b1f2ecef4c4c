//! The run loop: steps in file order, attempts under a retry policy, backoff,
//! timeouts, escalation, blocking and cancellation.
