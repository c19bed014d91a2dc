//! The model shapes this build runs — the one place they are listed.
//!
//! Const generics need a model's shape at compile time, so each supported (H, B) is one
//! instantiation of every command's generic code: [`dispatch!`] holds one match arm per entry
//! of [`SUPPORTED`] (a test checks the two agree), and everything else reads the list.

/// Every (H, B) this build runs: the seed notebook's, then the small boards'.
pub const SUPPORTED: [(usize, usize); 2] = [(128, 3), (32, 2)];

/// The seed notebook's shape: the default.
pub const SEED: (usize, usize) = SUPPORTED[0];

/// Runs `$f::<H, B>(args…)` for the shape `($hidden, $blocks)`, one arm per entry of
/// [`SUPPORTED`]; any other shape is an error naming the supported ones.
macro_rules! dispatch {
    (@shapes $hidden:expr, $blocks:expr, $($call:tt)*) => {
        match ($hidden as usize, $blocks as usize) {
            (128, 3) => $crate::cli::shapes::dispatch!(@call 128, 3, $($call)*),
            (32, 2) => $crate::cli::shapes::dispatch!(@call 32, 2, $($call)*),
            (h, b) => Err(anyhow::anyhow!(
                "model shape H={h} B={b} is not supported (this build runs {})",
                $crate::cli::shapes::listed()
            )),
        }
    };
    (@call $h:literal, $b:literal, $f:ident($($arg:expr),*)) => {
        $f::<$h, $b>($($arg),*)
    };
    ($hidden:expr, $blocks:expr, $f:ident($($arg:expr),* $(,)?)) => {
        $crate::cli::shapes::dispatch!(@shapes $hidden, $blocks, $f($($arg),*))
    };
}
pub(crate) use dispatch;

/// The supported shapes in words: "H=128 B=3 and H=32 B=2".
pub fn listed() -> String {
    let each: Vec<String> = SUPPORTED
        .iter()
        .map(|(h, b)| format!("H={h} B={b}"))
        .collect();
    each.join(" and ")
}

/// The shape meant by an optional H and B: the supported shape with the given H (or B) when
/// only one is given, the seed's when neither is; a pair nothing completes stays as given (and
/// [`dispatch!`] then names the supported ones).
pub fn complete(hidden: Option<usize>, blocks: Option<usize>) -> (usize, usize) {
    let find = |f: &dyn Fn(&(usize, usize)) -> bool| SUPPORTED.into_iter().find(|s| f(s));
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

    fn shape_of<const H: usize, const B: usize>() -> anyhow::Result<(usize, usize)> {
        Ok((H, B))
    }

    #[test]
    fn dispatch_has_one_arm_per_supported_shape() {
        for (h, b) in SUPPORTED {
            assert_eq!(dispatch!(h, b, shape_of()).unwrap(), (h, b));
        }
        let other = dispatch!(64, 1, shape_of()).unwrap_err().to_string();
        assert_eq!(
            other,
            "model shape H=64 B=1 is not supported (this build runs H=128 B=3 and H=32 B=2)"
        );
    }
}
