//! One latency judgement, with one wording, for every kind's `max_latency`.

use std::time::Duration;

use crate::core::duration::HumanDuration;

/// `Some(reason)` when `latency` is over `max`:
/// `"<what> took 1503ms, more than max_latency 1s"`. `None` when within it
/// or when no maximum is set.
pub fn exceeded(what: &str, latency: Duration, max: Option<&HumanDuration>) -> Option<String> {
    let max = max?;
    (latency > max.0).then(|| {
        format!(
            "{what} took {}ms, more than max_latency {max}",
            latency.as_millis()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn over_the_maximum_says_how_far_in_one_wording() {
        let max = HumanDuration::parse("1s").unwrap();
        assert_eq!(
            exceeded("the request", Duration::from_millis(1503), Some(&max)).as_deref(),
            Some("the request took 1503ms, more than max_latency 1s")
        );
        assert_eq!(exceeded("x", Duration::from_millis(1000), Some(&max)), None);
        assert_eq!(exceeded("x", Duration::from_secs(60), None), None);
    }
}
