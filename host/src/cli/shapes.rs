//! The model shapes with names — the one place they are listed. Every command runs any shape
//! a file holds (the host reads H, B and D at run time); these are the defaults `train` and
//! `demo` start from.

/// The named (H, B): the seed notebook's, then the small boards'.
pub const NAMED: [(usize, usize); 2] = [(128, 3), (32, 2)];

/// The seed notebook's shape: the default.
pub const SEED: (usize, usize) = NAMED[0];

/// The shape meant by an optional H and B: the named shape with the given H (or B) when only
/// one is given, the seed's when neither is; a pair nothing completes stays as given.
pub fn complete(hidden: Option<usize>, blocks: Option<usize>) -> (usize, usize) {
    let find = |f: &dyn Fn(&(usize, usize)) -> bool| NAMED.into_iter().find(|s| f(s));
    match (hidden, blocks) {
        (Some(h), Some(b)) => (h, b),
        (Some(h), None) => find(&|s| s.0 == h).unwrap_or((h, SEED.1)),
        (None, Some(b)) => find(&|s| s.1 == b).unwrap_or((SEED.0, b)),
        (None, None) => SEED,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_of_h_and_b_completes_a_named_shape() {
        assert_eq!(complete(None, None), (128, 3));
        assert_eq!(complete(Some(32), None), (32, 2));
        assert_eq!(complete(None, Some(2)), (32, 2));
        assert_eq!(complete(Some(64), None), (64, 3));
        assert_eq!(complete(None, Some(5)), (128, 5));
        assert_eq!(complete(Some(40), Some(1)), (40, 1));
    }
}
