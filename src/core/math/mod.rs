//! Numerical building blocks: stable log-sum-exp and softmax ([`lse`]), and dual numbers for
//! the independent derivative ([`dual`]).

pub mod dual;
pub mod lse;

/// A number as messages and summaries print it: Rust's shortest exact form between `1e-4` and
/// `1e6` (`0.5`, `1000`), scientific notation outside (`1e300`, `2.5e-7`), so an extreme value
/// is a few characters, never hundreds of digits.
#[must_use]
pub fn readable(v: f64) -> String {
    if v == 0.0 || !v.is_finite() || (1e-4..1e6).contains(&v.abs()) {
        format!("{v}")
    } else {
        format!("{v:e}")
    }
}

#[cfg(test)]
mod tests {
    use super::readable;

    #[test]
    fn readable_numbers_are_short() {
        assert_eq!(readable(0.5), "0.5");
        assert_eq!(readable(1000.0), "1000");
        assert_eq!(readable(1e308), "1e308");
        assert_eq!(readable(-2.5e-7), "-2.5e-7");
        assert_eq!(readable(f64::NEG_INFINITY), "-inf");
        assert_eq!(readable(0.0), "0");
    }
}
