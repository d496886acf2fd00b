//! The four checks a LimitRange item makes on one resource (`min`, `max`, `max` on
//! requests only, `maxLimitRequestRatio`), worded as upstream's plugin words them.
//!
//! Comparisons are exact, as upstream's are since it stopped projecting quantities to
//! (milli-)integers: the ratio check compares `limit` with `request * ratio` in 256-bit
//! arithmetic, and the observed ratio is printed to six decimals, rounded half to even.

use std::cmp::Ordering;

use super::resources::ResourceList;
use crate::quantity::Quantity;

/// A `min` constraint: the request must exist and, like any limit, not be below `enforced`.
pub(crate) fn min_constraint(
    limit_type: &str,
    resource: &str,
    enforced: &Quantity,
    requests: &ResourceList,
    limits: &ResourceList,
) -> Option<String> {
    let Some(request) = requests.get(resource) else {
        return Some(format!(
            "minimum {resource} usage per {limit_type} is {enforced}.  No request is specified"
        ));
    };
    if enforced > request {
        return Some(format!(
            "minimum {resource} usage per {limit_type} is {enforced}, but request is {request}"
        ));
    }
    match limits.get(resource) {
        Some(limit) if enforced > limit => Some(format!(
            "minimum {resource} usage per {limit_type} is {enforced}, but limit is {limit}"
        )),
        _ => None,
    }
}

/// A `max` constraint on requests alone, for types whose limits are not user input
/// (`PersistentVolumeClaim`).
pub(crate) fn max_request_constraint(
    limit_type: &str,
    resource: &str,
    enforced: &Quantity,
    requests: &ResourceList,
) -> Option<String> {
    let Some(request) = requests.get(resource) else {
        return Some(format!(
            "maximum {resource} usage per {limit_type} is {enforced}.  No request is specified"
        ));
    };
    (request > enforced).then(|| {
        format!("maximum {resource} usage per {limit_type} is {enforced}, but request is {request}")
    })
}

/// A `max` constraint: the limit must exist and, like any request, not exceed `enforced`.
pub(crate) fn max_constraint(
    limit_type: &str,
    resource: &str,
    enforced: &Quantity,
    requests: &ResourceList,
    limits: &ResourceList,
) -> Option<String> {
    let Some(limit) = limits.get(resource) else {
        return Some(format!(
            "maximum {resource} usage per {limit_type} is {enforced}.  No limit is specified"
        ));
    };
    if limit > enforced {
        return Some(format!(
            "maximum {resource} usage per {limit_type} is {enforced}, but limit is {limit}"
        ));
    }
    match requests.get(resource) {
        Some(request) if request > enforced => Some(format!(
            "maximum {resource} usage per {limit_type} is {enforced}, but request is {request}"
        )),
        _ => None,
    }
}

/// A `maxLimitRequestRatio` constraint: both must be set and non-zero, and
/// `|limit| / |request|` must not exceed `enforced`.
pub(crate) fn ratio_constraint(
    limit_type: &str,
    resource: &str,
    enforced: &Quantity,
    requests: &ResourceList,
    limits: &ResourceList,
) -> Option<String> {
    let request = requests.get(resource).filter(|q| !q.is_zero());
    let Some(request) = request else {
        return Some(format!(
            "{resource} max limit to request ratio per {limit_type} is {enforced}, but no request is specified or request is 0"
        ));
    };
    let limit = limits.get(resource).filter(|q| !q.is_zero());
    let Some(limit) = limit else {
        return Some(format!(
            "{resource} max limit to request ratio per {limit_type} is {enforced}, but no limit is specified or limit is 0"
        ));
    };
    exceeds_allowed(limit, request, enforced).then(|| {
        format!(
            "{resource} max limit to request ratio per {limit_type} is {enforced}, but provided ratio is {}",
            ratio_string(limit, request)
        )
    })
}

/// Whether `|limit| > |request| * ratio`, exactly.
fn exceeds_allowed(limit: &Quantity, request: &Quantity, ratio: &Quantity) -> bool {
    let Ok(ratio) = u128::try_from(ratio.nanos()) else {
        // a negative ratio allows nothing (validation rejects such a LimitRange)
        return true;
    };
    let limit = limit.nanos().unsigned_abs();
    let request = request.nanos().unsigned_abs();
    // both sides in nano-units squared
    U256::mul(limit, 1_000_000_000) > U256::mul(request, ratio)
}

/// `|limit| / |request|` to six decimals, rounded half to even; `request` is non-zero.
pub(crate) fn ratio_string(limit: &Quantity, request: &Quantity) -> String {
    let limit = limit.nanos().unsigned_abs();
    let request = request.nanos().unsigned_abs().max(1);
    let mut whole = limit / request;
    let mut remainder = limit % request;
    let mut fraction: u32 = 0;
    for _ in 0..6 {
        // remainder < request < 2^128, so remainder * 10 < 2^132 fits in 256 bits and
        // the next digit is at most 9 subtractions away
        let mut scaled = U256::mul(remainder, 10);
        let mut digit = 0;
        while scaled >= U256::from(request) {
            scaled = scaled.minus(request);
            digit += 1;
        }
        fraction = fraction * 10 + digit;
        remainder = scaled.lo;
    }
    let round_up = match U256::mul(remainder, 2).cmp(&U256::from(request)) {
        Ordering::Greater => true,
        Ordering::Equal => fraction % 2 == 1,
        Ordering::Less => false,
    };
    if round_up {
        fraction += 1;
        if fraction == 1_000_000 {
            fraction = 0;
            whole += 1;
        }
    }
    format!("{whole}.{fraction:06}")
}

/// An unsigned 256-bit number, just enough for the products above. Field order makes
/// the derived ordering numeric.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct U256 {
    hi: u128,
    lo: u128,
}

impl U256 {
    fn from(lo: u128) -> Self {
        Self { hi: 0, lo }
    }

    /// The full product of two 128-bit numbers.
    fn mul(a: u128, b: u128) -> Self {
        const MASK: u128 = u64::MAX as u128;
        let (a1, a0) = (a >> 64, a & MASK);
        let (b1, b0) = (b >> 64, b & MASK);
        let low = a0 * b0;
        let (mid, carry1) = (a0 * b1).overflowing_add(a1 * b0);
        let (mid, carry2) = mid.overflowing_add(low >> 64);
        let carries = (u128::from(carry1) + u128::from(carry2)) << 64;
        Self {
            hi: a1 * b1 + (mid >> 64) + carries,
            lo: (mid << 64) | (low & MASK),
        }
    }

    /// `self - b`, for `self >= b`.
    fn minus(self, b: u128) -> Self {
        let (lo, borrow) = self.lo.overflowing_sub(b);
        Self {
            hi: self.hi - u128::from(borrow),
            lo,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> Quantity {
        Quantity::parse(s).unwrap_or_else(|| panic!("quantity {s}"))
    }

    fn list(name: &str, value: &str) -> ResourceList {
        ResourceList::from([(name.to_string(), q(value))])
    }

    #[test]
    fn wide_product_is_exact() {
        let max = u128::MAX;
        assert_eq!(U256::mul(max, max), U256 { hi: max - 1, lo: 1 });
        assert_eq!(U256::mul(1 << 127, 2), U256 { hi: 1, lo: 0 });
        assert_eq!(U256::mul(3, 5), U256::from(15));
        assert_eq!(U256 { hi: 1, lo: 0 }.minus(1), U256::from(u128::MAX));
    }

    #[test]
    fn ratios_print_six_decimals_rounded_half_to_even() {
        assert_eq!(ratio_string(&q("2"), &q("500m")), "4.000000");
        assert_eq!(ratio_string(&q("1"), &q("3")), "0.333333");
        assert_eq!(ratio_string(&q("2"), &q("3")), "0.666667");
        assert_eq!(ratio_string(&q("1.0000005"), &q("1")), "1.000000");
        assert_eq!(ratio_string(&q("1.0000015"), &q("1")), "1.000002");
        assert_eq!(ratio_string(&q("0.9999999"), &q("1")), "1.000000");
        assert_eq!(ratio_string(&q("-3"), &q("1")), "3.000000");
    }

    #[test]
    fn ratio_comparison_is_exact() {
        let cases = [
            ("100", "200", "2", false),
            ("100", "300", "2", true),
            ("9007199254740992", "18014398509481984", "2", false),
            ("9007199254740992", "18014398509481985", "2", true),
            ("1.0001", "2.001", "2", true),
            ("1Ei", "2Ei", "2", false),
            ("1n", "100E", "2", true),
        ];
        for (request, limit, ratio, exceeds) in cases {
            assert_eq!(
                exceeds_allowed(&q(limit), &q(request), &q(ratio)),
                exceeds,
                "{request} {limit} {ratio}"
            );
        }
    }

    #[test]
    fn exact_min_and_max() {
        let none = ResourceList::new();
        let below = list("memory", "0.9999");
        assert!(min_constraint("Container", "memory", &q("1"), &below, &none).is_some());
        let above = list("memory", "1.0009");
        assert!(max_constraint("Container", "memory", &q("1.0001"), &none, &above).is_some());
        assert!(max_request_constraint("Container", "memory", &q("1.0001"), &above).is_some());
        assert!(
            max_constraint(
                "Container",
                "memory",
                &q("1000"),
                &none,
                &list("memory", "1")
            )
            .is_none()
        );
    }
}
