//! The random draws behind the dataset's proportions.

use std::collections::HashSet;

use rand::rngs::StdRng;
use rand::Rng;

/// An index in `0..n`, small ones far more likely: a few popular authors,
/// tags and followees, and a long tail.
pub(super) fn skewed(rng: &mut StdRng, n: usize) -> usize {
    let u: f64 = rng.random();
    ((u * u * n as f64) as usize).min(n - 1)
}

/// An exponentially distributed count with the given mean.
pub(super) fn count_with_mean(rng: &mut StdRng, mean: f64) -> usize {
    let u: f64 = rng.random_range(f64::EPSILON..1.0);
    (-mean * u.ln()).round() as usize
}

/// `count` distinct indices in `0..n`, drawn with `skewed`, never `except`.
pub(super) fn distinct_skewed(
    rng: &mut StdRng,
    n: usize,
    count: usize,
    except: Option<usize>,
) -> Vec<usize> {
    let count = count.min(n.saturating_sub(usize::from(except.is_some())));
    let mut chosen = HashSet::with_capacity(count);
    while chosen.len() < count {
        let candidate = if chosen.len() * 2 < n {
            skewed(rng, n)
        } else {
            rng.random_range(0..n)
        };
        if Some(candidate) != except {
            chosen.insert(candidate);
        }
    }
    chosen.into_iter().collect()
}
