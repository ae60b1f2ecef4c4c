//! Pass, fail and message of every predicate.
