//! A float written with a fixed number of decimals, exactly as `{:.N}`
//! writes it, without the formatter's exact algorithm where the answer is
//! plain: a sweep writes three such numbers per check (two latencies in its
//! Markdown row, a time in its JUnit test case), and `{:.N}` costs about a
//! thousand instructions each.

/// Powers of ten up to the most decimals taken by the quick path.
const SCALE: [u64; 7] = [1, 10, 100, 1_000, 10_000, 100_000, 1_000_000];

/// Scaled values below this are exact to well within [`TIE_MARGIN`]: a
/// product below 2^30 is off by at most 2^-23 of a unit.
const QUICK_LIMIT: f64 = 1e9;

/// How far from a half the scaled value must be for its rounding to be
/// plain. Closer to one, the exact decimal expansion decides (and `{:.N}`
/// rounds ties to even), so the formatter does.
const TIE_MARGIN: f64 = 1e-6;

/// Appends `value` with `decimals` digits after the point: the same text as
/// `format!("{value:.decimals$}")`.
pub fn push_fixed(out: &mut String, value: f64, decimals: usize) {
    if let Some(scale) = SCALE.get(decimals) {
        let scaled = value * *scale as f64;
        // Negative numbers (and -0.0, which `{:.N}` writes with its sign),
        // NaN and the infinities take the formatter's path.
        if value.is_sign_positive() && scaled < QUICK_LIMIT {
            let whole = scaled.floor();
            let fraction = scaled - whole;
            if (fraction - 0.5).abs() > TIE_MARGIN {
                let units = whole as u64 + u64::from(fraction > 0.5);
                push_integer(out, units / scale);
                if decimals > 0 {
                    out.push('.');
                    let mut digits = [b'0'; 6];
                    let mut rest = units % scale;
                    for digit in digits[..decimals].iter_mut().rev() {
                        *digit += (rest % 10) as u8;
                        rest /= 10;
                    }
                    // ASCII digits.
                    out.push_str(std::str::from_utf8(&digits[..decimals]).unwrap_or_default());
                }
                return;
            }
        }
    }
    use std::fmt::Write;
    let _ = write!(out, "{value:.decimals$}");
}

/// Appends `n` in decimal.
pub fn push_integer(out: &mut String, n: u64) {
    let mut buffer = [0u8; 20];
    // ASCII digits.
    out.push_str(std::str::from_utf8(integer_digits(n, &mut buffer)).unwrap_or_default());
}

/// `n` in decimal, written at the end of `buffer` (20 digits hold any
/// `u64`): the digits.
pub fn integer_digits(n: u64, buffer: &mut [u8; 20]) -> &[u8] {
    let mut at = buffer.len();
    let mut rest = n;
    loop {
        at -= 1;
        buffer[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    &buffer[at..]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixed(value: f64, decimals: usize) -> String {
        let mut out = String::new();
        push_fixed(&mut out, value, decimals);
        out
    }

    #[test]
    fn fixed_decimals_are_written_as_the_formatter_writes_them() {
        // Latencies and durations as sweeps record them (three decimals of
        // a millisecond), exact binary ties, decimal near-ties, and the
        // values the quick path leaves to the formatter.
        let mut values = vec![
            0.0,
            -0.0,
            0.125,
            0.375,
            2.5,
            1.005,
            1.015,
            0.045,
            9.995,
            9.9949999,
            999.95,
            1e-7,
            5e-7,
            0.5,
            1.5,
            123_456.789_5,
            4.294_967_295e9,
            1e9,
            1e12,
            f64::MAX,
            f64::MIN_POSITIVE,
            -1.25,
            -3.0,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
        ];
        // A deterministic spread: every thousandth of a millisecond up to
        // 20 ms, then a geometric walk up to ten million.
        values.extend((0..20_000).map(|n| f64::from(n) / 1000.0));
        let mut v = 1e-4;
        while v < 1e7 {
            values.push(v);
            v *= 1.000_37;
        }
        let mut quick = 0;
        for &value in &values {
            for decimals in 0..=8 {
                assert_eq!(
                    fixed(value, decimals),
                    format!("{value:.decimals$}"),
                    "{value:?} to {decimals} decimals"
                );
                let scaled = value * 10f64.powi(decimals as i32);
                if decimals <= 6 && value >= 0.0 && scaled < QUICK_LIMIT {
                    quick += 1;
                }
            }
        }
        // Most of them took the quick path (the comparison is not only the
        // formatter against itself).
        assert!(quick > values.len() * 4, "{quick} of {}", values.len() * 9);
    }

    #[test]
    fn integers_are_written_in_decimal() {
        for n in [0, 7, 10, 99, 100, 12_345, u64::from(u32::MAX), u64::MAX] {
            let mut out = String::from("x");
            push_integer(&mut out, n);
            assert_eq!(out, format!("x{n}"));
        }
    }
}
