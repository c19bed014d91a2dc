//! Class adherence: how often conditioned samples land in the class they were asked for, as
//! a k-nearest-neighbour classifier fit on labelled reference points
//! ([`LabelledPoints`]) judges them.
//!
//! **The classifier.** A sample's class is the majority label among its `k` nearest
//! reference points ([`NEIGHBOURS`] by default). Distances are Euclidean, compared as
//! squared distances summed in f64 over the coordinates in order (every f32 difference is
//! exact in f64). A tie in distance goes to the earlier reference row (the neighbours are
//! the first `k` of the reference sorted by distance, then by row); a tie in votes goes to
//! the smallest label. A `k` above the reference's N takes all N points.
//!
//! **The scores.** [`adherence`]: of samples all asked for class K, the share the
//! classifier assigns to K. [`adherence_per_class`]: the same for samples each asked for
//! its own class, one [`Adherence`] per class.
//!
//! **Cost.** Brute force: each sample is compared with every reference point, O(N·M·D),
//! the samples spread over the worker threads; each thread holds its `k` nearest so far, and
//! [`classify`] one `u16` per sample. The result is the same for any number of threads.

use rayon::prelude::*;

use super::Points;
use crate::data::labels::LabelledPoints;

/// The classifier's default `k`.
pub const NEIGHBOURS: usize = 10;

/// Why class adherence cannot be computed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AdherenceError {
    /// The samples and the reference points have different widths.
    #[error("the reference points have {reference} coordinates, the samples {samples}")]
    Width {
        /// Coordinates of a sample.
        samples: usize,
        /// Coordinates of a reference point.
        reference: usize,
    },
    /// There are no reference points to classify by.
    #[error("no reference points to classify the samples by")]
    NoReference,
    /// `k` is 0.
    #[error("k = 0: the classifier needs at least one neighbour")]
    NoNeighbours,
    /// A class asked for is not one of the reference's (it is C or above).
    #[error("class {class}: the reference's classes are 0 to {}", .classes - 1)]
    Class {
        /// The class asked for.
        class: u32,
        /// C, the reference's class count (at least 1).
        classes: u32,
    },
    /// The asked classes are not one per sample.
    #[error("{asked} asked classes for {samples} samples")]
    Asked {
        /// Samples given.
        samples: usize,
        /// Asked classes given.
        asked: usize,
    },
}

/// The adherence of the samples asked for one class.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Adherence {
    /// The class asked for.
    pub class: u16,
    /// Samples asked for it.
    pub samples: usize,
    /// Of those, the ones the classifier assigns to it.
    pub assigned: usize,
    /// The neighbours that vote: the `k` asked for, at most the reference's N.
    pub neighbours: usize,
}

impl Adherence {
    /// The share of the samples assigned to their class, in [0, 1]; `None` without samples.
    pub fn share(&self) -> Option<f64> {
        (self.samples > 0).then(|| self.assigned as f64 / self.samples as f64)
    }
}

/// Each sample's class by the `k`-NN classifier fit on `reference` (see the module docs),
/// in sample order.
pub fn classify(
    reference: &LabelledPoints,
    samples: &Points,
    k: usize,
) -> Result<Vec<u16>, AdherenceError> {
    let k = check(reference, samples, k)?;
    Ok(samples
        .values()
        .par_chunks_exact(samples.dim())
        .map_init(|| Nearest::new(k), |nearest, x| nearest.class(reference, x))
        .collect())
}

/// The adherence of `samples` all asked for `class`: the share of them the `k`-NN
/// classifier fit on `reference` assigns to `class`.
pub fn adherence(
    reference: &LabelledPoints,
    samples: &Points,
    class: u16,
    k: usize,
) -> Result<Adherence, AdherenceError> {
    let neighbours = check(reference, samples, k)?;
    check_class(reference, class)?;
    let assigned = samples
        .values()
        .par_chunks_exact(samples.dim())
        .map_init(
            || Nearest::new(neighbours),
            |nearest, x| usize::from(nearest.class(reference, x) == class),
        )
        .sum();
    Ok(Adherence {
        class,
        samples: samples.len(),
        assigned,
        neighbours,
    })
}

/// The adherence of samples each asked for its own class (`asked[i]` for sample `i`), per
/// class: one [`Adherence`] for every class 0 to C − 1 of `reference`, in order (a class no
/// sample asked for has 0 samples).
pub fn adherence_per_class(
    reference: &LabelledPoints,
    samples: &Points,
    asked: &[u16],
    k: usize,
) -> Result<Vec<Adherence>, AdherenceError> {
    let neighbours = check(reference, samples, k)?;
    if asked.len() != samples.len() {
        return Err(AdherenceError::Asked {
            samples: samples.len(),
            asked: asked.len(),
        });
    }
    for &class in asked {
        check_class(reference, class)?;
    }
    let assigned = classify(reference, samples, k)?;
    let mut per_class: Vec<Adherence> = (0..reference.classes())
        .map(|class| Adherence {
            // C ≤ 65536: every class is a u16.
            class: class as u16,
            samples: 0,
            assigned: 0,
            neighbours,
        })
        .collect();
    for (&want, &got) in asked.iter().zip(&assigned) {
        let entry = &mut per_class[usize::from(want)];
        entry.samples += 1;
        entry.assigned += usize::from(want == got);
    }
    Ok(per_class)
}

/// The arguments' checks; returns the `k` that votes (at most N).
fn check(reference: &LabelledPoints, samples: &Points, k: usize) -> Result<usize, AdherenceError> {
    if samples.dim() != reference.dim() {
        return Err(AdherenceError::Width {
            samples: samples.dim(),
            reference: reference.dim(),
        });
    }
    if reference.is_empty() {
        return Err(AdherenceError::NoReference);
    }
    if k == 0 {
        return Err(AdherenceError::NoNeighbours);
    }
    Ok(k.min(reference.len()))
}

/// `class` is one of the reference's.
fn check_class(reference: &LabelledPoints, class: u16) -> Result<(), AdherenceError> {
    match u32::from(class) < reference.classes() {
        true => Ok(()),
        false => Err(AdherenceError::Class {
            class: class.into(),
            classes: reference.classes(),
        }),
    }
}

/// One thread's search for a sample's `k` nearest reference points: their squared
/// distances and labels, nearest first, reused from sample to sample.
struct Nearest {
    k: usize,
    best: Vec<(f64, u16)>,
    labels: Vec<u16>,
}

impl Nearest {
    fn new(k: usize) -> Self {
        Self {
            k,
            best: Vec::with_capacity(k + 1),
            labels: Vec::with_capacity(k),
        }
    }

    /// The class of the sample `x` (see the module docs).
    fn class(&mut self, reference: &LabelledPoints, x: &[f32]) -> u16 {
        let (k, best) = (self.k, &mut self.best);
        best.clear();
        let mut worst = f64::INFINITY;
        for (row, &label) in reference.points().rows().zip(reference.labels()) {
            let d2 = squared_distance(x, row);
            // A later row at the same distance as the k-th nearest does not displace it.
            if best.len() == k {
                if d2 >= worst {
                    continue;
                }
                best.pop();
            }
            // After every earlier row at the same distance.
            let at = best.partition_point(|&(d, _)| d <= d2);
            best.insert(at, (d2, label));
            if best.len() == k {
                worst = best[k - 1].0;
            }
        }
        self.labels.clear();
        self.labels.extend(best.iter().map(|&(_, label)| label));
        majority(&mut self.labels)
    }
}

/// `‖x − y‖²` in f64, summed over the coordinates in order.
fn squared_distance(x: &[f32], y: &[f32]) -> f64 {
    x.iter()
        .zip(y)
        .map(|(&a, &b)| {
            let d = f64::from(a) - f64::from(b);
            d * d
        })
        .sum()
}

/// The most frequent of `labels` (at least one), the smallest of those tied; sorts them.
fn majority(labels: &mut [u16]) -> u16 {
    labels.sort_unstable();
    let (mut winner, mut most) = (labels[0], 0);
    for run in labels.chunk_by(|a, b| a == b) {
        // Runs come smallest label first: only a strictly larger count takes over.
        if run.len() > most {
            (winner, most) = (run[0], run.len());
        }
    }
    winner
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::scores::tests::{cloud, naive_distance};

    /// The classifier the plain way: every distance in f64, all sorted (by distance, then
    /// row), the first `k` counted, the largest count with the smallest label.
    fn naive_class(reference: &LabelledPoints, x: &[f32], k: usize) -> u16 {
        let mut all: Vec<(f64, usize)> = (0..reference.len())
            .map(|j| (naive_distance(x, reference.points().row(j)), j))
            .collect();
        all.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        let mut votes = BTreeMap::new();
        for &(_, j) in all.iter().take(k) {
            *votes.entry(reference.labels()[j]).or_insert(0usize) += 1;
        }
        let most = *votes.values().max().unwrap();
        *votes.iter().find(|&(_, &n)| n == most).unwrap().0
    }

    /// A small deterministic mix for labels.
    fn mix(i: u64, seed: u64) -> u64 {
        let mut z = i
            .wrapping_mul(0x9e37_79b9_7f4a_7c15)
            .wrapping_add(seed ^ 0xd1b5_4a32_d192_ed03);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z ^ (z >> 31)
    }

    /// `n` points of `cloud(n, dim, seed, 0)` with labels in `0..classes`, at random.
    fn labelled(n: usize, dim: usize, seed: u64, classes: u64) -> LabelledPoints {
        let labels = (0..n as u64)
            .map(|i| (mix(i, seed) % classes) as u16)
            .collect();
        LabelledPoints::new(cloud(n, dim, seed, 0.0), labels).unwrap()
    }

    #[test]
    fn the_classifier_is_the_naive_one_on_random_data() {
        for (dim, classes, k, seed) in [(2, 3, 10, 1), (5, 4, 7, 2), (1, 2, 1, 3), (16, 5, 12, 4)] {
            let reference = labelled(400, dim, seed, classes);
            let samples = cloud(150, dim, seed + 100, 0.3);
            let got = classify(&reference, &samples, k).unwrap();
            let want: Vec<u16> = samples
                .rows()
                .map(|x| naive_class(&reference, x, k))
                .collect();
            assert_eq!(got, want, "dim {dim}, {classes} classes, k {k}");
            // the adherence of each class is the share the naive classifier gives it
            for class in 0..classes as u16 {
                let a = adherence(&reference, &samples, class, k).unwrap();
                let hits = want.iter().filter(|&&c| c == class).count();
                assert_eq!((a.samples, a.assigned, a.neighbours), (150, hits, k));
            }
            let asked: Vec<u16> = (0..150).map(|i| (mix(i, 9) % classes) as u16).collect();
            let per_class = adherence_per_class(&reference, &samples, &asked, k).unwrap();
            assert_eq!(per_class.len(), classes as usize);
            for (c, a) in per_class.iter().enumerate() {
                let mine = (0..150).filter(|&i| usize::from(asked[i]) == c);
                let hits = mine.clone().filter(|&i| want[i] == asked[i]).count();
                assert_eq!(
                    (a.class as usize, a.samples, a.assigned),
                    (c, mine.count(), hits)
                );
            }
        }
    }

    /// Three clusters far apart: samples at a class's cluster are all of it, samples at
    /// another's none.
    #[test]
    fn separated_clusters_give_one_and_another_class_zero() {
        let centres = [[0.0f32, 0.0], [100.0, 0.0], [0.0, 100.0]];
        let at = |c: usize, n: usize, seed: u64| -> Vec<f32> {
            cloud(n, 2, seed, 0.0)
                .rows()
                .flat_map(|p| [p[0] + centres[c][0], p[1] + centres[c][1]])
                .collect()
        };
        let values: Vec<f32> = (0..3).flat_map(|c| at(c, 200, c as u64)).collect();
        let labels = (0..3).flat_map(|c| [c as u16; 200]).collect();
        let reference = LabelledPoints::new(Points::new(2, values).unwrap(), labels).unwrap();
        for c in 0..3 {
            let samples = Points::new(2, at(c, 50, 10 + c as u64)).unwrap();
            let a = adherence(&reference, &samples, c as u16, NEIGHBOURS).unwrap();
            assert_eq!(a.share(), Some(1.0), "class {c}");
            let other = (c + 1) % 3;
            let a = adherence(&reference, &samples, other as u16, NEIGHBOURS).unwrap();
            assert_eq!(a.share(), Some(0.0), "class {other} at {c}");
        }
        // Samples of every cluster, each asked for its own class or the next.
        let values: Vec<f32> = (0..3).flat_map(|c| at(c, 20, 20 + c as u64)).collect();
        let samples = Points::new(2, values).unwrap();
        let own: Vec<u16> = (0..60).map(|i| (i / 20) as u16).collect();
        let shares = |asked: &[u16]| -> Vec<Option<f64>> {
            adherence_per_class(&reference, &samples, asked, NEIGHBOURS)
                .unwrap()
                .iter()
                .map(Adherence::share)
                .collect()
        };
        assert_eq!(shares(&own), [Some(1.0); 3]);
        let next: Vec<u16> = own.iter().map(|&c| (c + 1) % 3).collect();
        assert_eq!(shares(&next), [Some(0.0); 3]);
        assert_eq!(shares(&[0; 60]), [Some(20.0 / 60.0), None, None]);
    }

    #[test]
    fn ties_go_to_the_earlier_row_and_the_smallest_label() {
        // 1-D: rows at +1 (label 5), −1 (label 3), +2 (label 3), a sample at 0.
        let reference =
            LabelledPoints::new(Points::new(1, vec![1.0, -1.0, 2.0]).unwrap(), vec![5, 3, 3])
                .unwrap();
        let at_zero = Points::new(1, vec![0.0]).unwrap();
        // k = 1: rows 0 and 1 are equally near; the earlier one, label 5, wins.
        assert_eq!(classify(&reference, &at_zero, 1).unwrap(), [5]);
        // k = 2: one vote each for 5 and 3; the smaller label wins.
        assert_eq!(classify(&reference, &at_zero, 2).unwrap(), [3]);
        // k = 3: 3 has two votes.
        assert_eq!(classify(&reference, &at_zero, 3).unwrap(), [3]);
        // The same rows in another order: now label 3 comes first.
        let swapped =
            LabelledPoints::new(Points::new(1, vec![-1.0, 1.0, 2.0]).unwrap(), vec![3, 5, 3])
                .unwrap();
        assert_eq!(classify(&swapped, &at_zero, 1).unwrap(), [3]);
        // Votes tied 2:2 between 4 and 1, nearer points of 4: still 1.
        let reference = LabelledPoints::new(
            Points::new(1, vec![0.1, 0.2, 0.3, 0.4, 9.0]).unwrap(),
            vec![4, 4, 1, 1, 0],
        )
        .unwrap();
        assert_eq!(classify(&reference, &at_zero, 4).unwrap(), [1]);
        // k above N: all N vote (4, 4, 1, 1, 0: a tie of 4 and 1 again).
        let all = adherence(&reference, &at_zero, 1, 100).unwrap();
        assert_eq!((all.assigned, all.neighbours), (1, 5));
        // the sort-based reference agrees on each
        for k in 1..=5 {
            let got = classify(&reference, &at_zero, k).unwrap()[0];
            assert_eq!(got, naive_class(&reference, &[0.0], k), "k {k}");
        }
    }

    #[test]
    fn bad_arguments_are_errors() {
        let reference = labelled(20, 2, 1, 3);
        let samples = cloud(5, 2, 2, 0.0);
        assert_eq!(
            adherence(&reference, &cloud(5, 3, 2, 0.0), 0, 10),
            Err(AdherenceError::Width {
                samples: 3,
                reference: 2
            })
        );
        assert_eq!(
            adherence(&reference, &samples, 0, 0),
            Err(AdherenceError::NoNeighbours)
        );
        let e = adherence(&reference, &samples, 3, 10).unwrap_err();
        assert_eq!(e.to_string(), "class 3: the reference's classes are 0 to 2");
        let e = adherence_per_class(&reference, &samples, &[0, 1, 2, 3, 0], 10).unwrap_err();
        assert_eq!(
            e,
            AdherenceError::Class {
                class: 3,
                classes: 3
            }
        );
        assert_eq!(
            adherence_per_class(&reference, &samples, &[0, 1], 10),
            Err(AdherenceError::Asked {
                samples: 5,
                asked: 2
            })
        );
        let empty = LabelledPoints::new(Points::new(2, vec![]).unwrap(), vec![]).unwrap();
        assert_eq!(
            classify(&empty, &samples, 10),
            Err(AdherenceError::NoReference)
        );
        let none = adherence(&reference, &Points::new(2, vec![]).unwrap(), 0, 10).unwrap();
        assert_eq!((none.samples, none.share()), (0, None));
    }
}
