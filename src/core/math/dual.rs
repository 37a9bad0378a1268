//! Forward-mode dual numbers: the lab's independent derivative.
//!
//! A [`Dual`] carries a value and its derivative along one direction ([`Duals`] along several).
//! Evaluating an objective written generically over [`Scalar`] with one input seeded `eps = 1`
//! yields the exact partial derivative (to rounding), with no step size to tune, unlike finite
//! differences. MATH.md §2 asks for exactly this kind of check of the identity.

use std::ops::{Add, AddAssign, Div, Mul, Neg, Sub};

/// The arithmetic the reference objectives need. Implemented by `f64` and [`Duals`].
pub trait Scalar:
    Copy
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
    + AddAssign
{
    /// A constant (zero derivative).
    fn constant(v: f64) -> Self;
    /// The value, without its derivative.
    fn value(self) -> f64;
    /// `e^self`.
    #[must_use]
    fn exp(self) -> Self;
    /// `ln self`.
    #[must_use]
    fn ln(self) -> Self;
}

impl Scalar for f64 {
    fn constant(v: f64) -> Self {
        v
    }
    fn value(self) -> f64 {
        self
    }
    fn exp(self) -> Self {
        f64::exp(self)
    }
    fn ln(self) -> Self {
        f64::ln(self)
    }
}

/// `re + Σ_k eps_k·ε_k` with `ε_k ε_l = 0`: a value and its derivatives along `L` directions at
/// once. Each direction's derivative goes through exactly the arithmetic a single dual number
/// would see, so seeding `L` inputs in one evaluation gives the same `L` partial derivatives,
/// bit for bit, as `L` evaluations with one seed each, while the values (and their
/// exponentials) are computed once.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Duals<const L: usize> {
    /// The value.
    pub re: f64,
    /// The derivatives along the seeded directions.
    pub eps: [f64; L],
}

/// `re + eps·ε` with `ε² = 0`: one direction.
pub type Dual = Duals<1>;

impl Dual {
    /// A variable: value `re`, derivative 1.
    #[must_use]
    pub fn variable(re: f64) -> Self {
        Self { re, eps: [1.0] }
    }
}

impl<const L: usize> Duals<L> {
    /// Every derivative mapped by `f`, direction by direction.
    #[inline]
    fn with(self, f: impl Fn(f64) -> f64) -> [f64; L] {
        std::array::from_fn(|k| f(self.eps[k]))
    }
}

impl<const L: usize> Add for Duals<L> {
    type Output = Self;
    fn add(self, o: Self) -> Self {
        Self {
            re: self.re + o.re,
            eps: std::array::from_fn(|k| self.eps[k] + o.eps[k]),
        }
    }
}

impl<const L: usize> AddAssign for Duals<L> {
    fn add_assign(&mut self, o: Self) {
        *self = *self + o;
    }
}

impl<const L: usize> Sub for Duals<L> {
    type Output = Self;
    fn sub(self, o: Self) -> Self {
        Self {
            re: self.re - o.re,
            eps: std::array::from_fn(|k| self.eps[k] - o.eps[k]),
        }
    }
}

impl<const L: usize> Mul for Duals<L> {
    type Output = Self;
    #[allow(clippy::suspicious_arithmetic_impl)] // the product rule
    fn mul(self, o: Self) -> Self {
        Self {
            re: self.re * o.re,
            eps: std::array::from_fn(|k| self.re * o.eps[k] + self.eps[k] * o.re),
        }
    }
}

impl<const L: usize> Div for Duals<L> {
    type Output = Self;
    #[allow(clippy::suspicious_arithmetic_impl)] // the quotient rule
    fn div(self, o: Self) -> Self {
        Self {
            re: self.re / o.re,
            // (a' − (a/b) b') / b rather than (a' b − a b') / b²: b² overflows for |b| > 1e154
            // and underflows for |b| < 1e-154, which made every derivative through a division by
            // an extreme temperature NaN or 0.
            eps: std::array::from_fn(|k| (self.eps[k] - self.re / o.re * o.eps[k]) / o.re),
        }
    }
}

impl<const L: usize> Neg for Duals<L> {
    type Output = Self;
    fn neg(self) -> Self {
        Self {
            re: -self.re,
            eps: self.with(|d| -d),
        }
    }
}

impl<const L: usize> Scalar for Duals<L> {
    fn constant(v: f64) -> Self {
        Self { re: v, eps: [0.0; L] }
    }
    fn value(self) -> f64 {
        self.re
    }
    fn exp(self) -> Self {
        let e = self.re.exp();
        Self {
            re: e,
            eps: self.with(|d| d * e),
        }
    }
    fn ln(self) -> Self {
        Self {
            re: self.re.ln(),
            eps: self.with(|d| d / self.re),
        }
    }
}

/// Stable `log Σ exp(a_j)` for any [`Scalar`]: the shift is the largest value, held constant
/// (the identity `lse(a) = c + lse(a − c)` holds for every constant `c`).
pub fn log_sum_exp_generic<S: Scalar>(a: &[S]) -> S {
    let m = a.iter().map(|v| v.value()).fold(f64::NEG_INFINITY, f64::max);
    let c = S::constant(m);
    let mut s = S::constant(0.0);
    for &v in a {
        s += (v - c).exp();
    }
    c + s.ln()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dual_derivatives_of_closed_forms() {
        // d/dx [x^2 e^x / ln x] at x = 2, by hand: e^x (2x + x^2)/ln x − x e^x / ln^2 x.
        let x = Dual::variable(2.0);
        let f = x * x * x.exp() / x.ln();
        let (e, l) = (2f64.exp(), 2f64.ln());
        let expected = e * (4.0 + 4.0) / l - 2.0 * e / (l * l);
        assert!((f.eps[0] - expected).abs() < 1e-12 * expected.abs());
        assert!((f.re - 4.0 * e / l).abs() < 1e-12);
    }

    #[test]
    fn generic_lse_gradient_is_softmax() {
        let a = [0.5, -0.25, 1.75];
        let mut p = [0.0; 3];
        crate::core::math::lse::softmax_into(&a, &mut p);
        for j in 0..3 {
            let d: Vec<Dual> = a
                .iter()
                .enumerate()
                .map(|(k, &v)| if k == j { Dual::variable(v) } else { Dual::constant(v) })
                .collect();
            let l = log_sum_exp_generic(&d);
            assert!((l.eps[0] - p[j]).abs() < 1e-15);
        }
    }
}
