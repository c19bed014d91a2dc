//! Where every tensor of a model lies in its flat parameter vector: the one definition of the
//! file order (PyTorch `state_dict` order) and of each layer's shape, for any H, B and data
//! dimension D, at compile time or at run time.
//!
//! ```text
//! time_in (1 → H), time_out (H → H), input (D → H),
//! B × [first (H → H), second (H → H)], output (H → D);
//! each layer: weight [out][in] row-major, then bias [out];
//! then, for a model conditioned on C > 0 classes, the class embedding [(C + 1) × H]
//! (`class_embed.weight`, row C the "no class" row ∅), which no layer owns
//! ```
//! The model file's float payload, the trainer's flat vectors, the GPU's weight buffer and
//! the CUDA kernels' offsets are all this layout.

use core::ops::Range;

use crate::model::{Layer, TensorName};

/// Where one dense layer's tensors lie: weight `[o × i]` (row-major) at `w`, bias `[o]` at
/// `b`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dense {
    /// The layer.
    pub layer: Layer,
    /// Input features.
    pub i: usize,
    /// Output features.
    pub o: usize,
    /// Offset of the weight.
    pub w: usize,
    /// Offset of the bias.
    pub b: usize,
}

impl Dense {
    /// The offset just past the bias: where the next layer starts.
    pub const fn end(&self) -> usize {
        self.b + self.o
    }

    /// The weight, `[o × i]` row-major, in the flat vector `p`.
    pub fn weight<'a>(&self, p: &'a [f32]) -> &'a [f32] {
        &p[self.w..self.b]
    }

    /// The bias, `[o]`, in the flat vector `p`.
    pub fn bias<'a>(&self, p: &'a [f32]) -> &'a [f32] {
        &p[self.b..self.end()]
    }
}

/// Weights and biases of a layer `i → o`, if the count fits a usize.
const fn linear(i: usize, o: usize) -> Option<usize> {
    match i.checked_mul(o) {
        Some(w) => w.checked_add(o),
        None => None,
    }
}

/// The layout of a model with `hidden` units and `blocks` residual blocks on points of `dim`
/// coordinates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// H.
    pub hidden: usize,
    /// B.
    pub blocks: usize,
    /// D, the data's dimension: the input layer's inputs and the output layer's outputs.
    pub dim: usize,
    /// C, the classes the model is conditioned on (0: none, no embedding).
    pub classes: usize,
    /// Parameters before the first block: `time_in`, `time_out`, `input`.
    head: usize,
    /// Parameters of one residual block.
    block: usize,
    /// Every parameter.
    len: usize,
}

impl Layout {
    /// The layout for `hidden` units and `blocks` blocks on the notebook's 2-D points:
    /// [`Layout::with_dim`]`(hidden, blocks, 2)`.
    pub const fn new(hidden: usize, blocks: usize) -> Option<Self> {
        Self::with_dim(hidden, blocks, 2)
    }

    /// The layout for `hidden` units and `blocks` blocks on points of `dim` coordinates, if
    /// every offset fits a usize (then no offset computed from it overflows).
    pub const fn with_dim(hidden: usize, blocks: usize, dim: usize) -> Option<Self> {
        let (h, b, d) = (hidden, blocks, dim);
        // Written out, not summed over the layers: B comes from a file's header, so the
        // count must not take B steps.
        let (Some(time_in), Some(square), Some(input), Some(output)) =
            (linear(1, h), linear(h, h), linear(d, h), linear(h, d))
        else {
            return None;
        };
        let Some(head) = checked_sum([time_in, square, input]) else {
            return None;
        };
        let Some(block) = square.checked_mul(2) else {
            return None;
        };
        let Some(blocks_len) = block.checked_mul(b) else {
            return None;
        };
        let Some(len) = checked_sum([head, blocks_len, output]) else {
            return None;
        };
        Some(Self {
            hidden,
            blocks,
            dim,
            classes: 0,
            head,
            block,
            len,
        })
    }

    /// This layout conditioned on `classes` classes: the class embedding's (C + 1) × H rows
    /// follow every layer (none for C = 0, the unconditional model), if the count fits.
    pub const fn with_classes(self, classes: usize) -> Option<Self> {
        let base = self.len - self.embedding_len();
        let rows = match classes {
            0 => 0,
            c => match c.checked_add(1) {
                Some(r) => r,
                None => return None,
            },
        };
        let Some(embedding) = rows.checked_mul(self.hidden) else {
            return None;
        };
        let Some(len) = base.checked_add(embedding) else {
            return None;
        };
        Some(Self {
            classes,
            len,
            ..self
        })
    }

    /// Parameters of the class embedding: (C + 1)·H, or 0 for an unconditional model.
    const fn embedding_len(&self) -> usize {
        match self.classes {
            0 => 0,
            c => (c + 1) * self.hidden,
        }
    }

    /// Where the class embedding lies — (C + 1) rows of H, row-major, after every layer —
    /// for a conditioned model; `None` for C = 0.
    pub const fn class_embedding(&self) -> Option<Range<usize>> {
        match self.classes {
            0 => None,
            _ => Some(self.len - self.embedding_len()..self.len),
        }
    }

    /// The layout of `Model<H, B>`, on 2-D points: [`Layout::of_dim`]`::<H, B, 2>()`.
    pub const fn of<const H: usize, const B: usize>() -> Self {
        Self::of_dim::<H, B, 2>()
    }

    /// The layout of `Model<H, B, D>` (a compile-time error for a shape no usize can count).
    pub const fn of_dim<const H: usize, const B: usize, const D: usize>() -> Self {
        match Self::with_dim(H, B, D) {
            Some(layout) => layout,
            None => panic!("the model's parameter count overflows a usize"),
        }
    }

    /// Number of parameters.
    pub const fn len(&self) -> usize {
        self.len
    }

    /// Whether the model has no parameters (never: every layer has a bias).
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Parameters of one residual block: the distance from block i's first weight to block
    /// i + 1's.
    pub const fn block_stride(&self) -> usize {
        self.block
    }

    /// Number of layers: 3 + 2B + 1.
    pub const fn layers(&self) -> usize {
        2 * self.blocks + 4
    }

    /// Layer `n` in file order (`n < self.layers()`).
    pub const fn layer(&self, n: usize) -> Layer {
        match n {
            0 => Layer::TimeIn,
            1 => Layer::TimeOut,
            2 => Layer::Input,
            n if n < 3 + 2 * self.blocks => {
                let k = n - 3;
                if k % 2 == 0 {
                    Layer::BlockFirst(k / 2)
                } else {
                    Layer::BlockSecond(k / 2)
                }
            }
            _ => Layer::Output,
        }
    }

    /// Where `layer` lies (a block index below B).
    pub const fn dense(&self, layer: Layer) -> Dense {
        let (h, d) = (self.hidden, self.dim);
        let square = h * h + h;
        let (i, o, w) = match layer {
            Layer::TimeIn => (1, h, 0),
            Layer::TimeOut => (h, h, 2 * h),
            Layer::Input => (d, h, 2 * h + square),
            Layer::BlockFirst(k) => (h, h, self.head + k * self.block),
            Layer::BlockSecond(k) => (h, h, self.head + k * self.block + square),
            Layer::Output => (h, d, self.head + self.blocks * self.block),
        };
        Dense {
            layer,
            i,
            o,
            w,
            b: w + i * o,
        }
    }

    /// Every layer in file order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = Dense> + Clone + '_ {
        (0..self.layers()).map(|n| self.dense(self.layer(n)))
    }

    /// Every tensor in file order with its PyTorch `state_dict` name, its shape (`[out, in]`
    /// for a weight, `[out]` for a bias) and where it lies in the flat vector: for each layer
    /// its weight, then its bias.
    pub fn for_each_tensor(&self, mut f: impl FnMut(TensorName, &[usize], Range<usize>)) {
        for d in self.iter() {
            f(TensorName::weight(d.layer), &[d.o, d.i], d.w..d.b);
            f(TensorName::bias(d.layer), &[d.o], d.b..d.end());
        }
        if let Some(rows) = self.class_embedding() {
            f(
                TensorName::CLASS_EMBEDDING,
                &[self.classes + 1, self.hidden],
                rows,
            );
        }
    }

    /// The offsets as named constants for generated code (the CUDA sampler's `-D` options):
    /// each fixed layer's weight and bias, block 0's, and the block stride, from which block
    /// k's are `BLOCK_STRIDE·k` further.
    pub fn named_offsets(&self) -> [(&'static str, usize); 13] {
        let [t0, t1, input, first, second, output] = [
            Layer::TimeIn,
            Layer::TimeOut,
            Layer::Input,
            Layer::BlockFirst(0),
            Layer::BlockSecond(0),
            Layer::Output,
        ]
        .map(|l| self.dense(l));
        [
            ("TIME_IN_W", t0.w),
            ("TIME_IN_B", t0.b),
            ("TIME_OUT_W", t1.w),
            ("TIME_OUT_B", t1.b),
            ("INPUT_W", input.w),
            ("INPUT_B", input.b),
            ("FIRST_W", first.w),
            ("FIRST_B", first.b),
            ("SECOND_W", second.w),
            ("SECOND_B", second.b),
            ("BLOCK_STRIDE", self.block),
            ("OUTPUT_W", output.w),
            ("OUTPUT_B", output.b),
        ]
    }

    /// Output channels (biases) of every layer together: (3 + 2B)·H + D (no overflow: each
    /// channel is a parameter, and their count fits).
    pub const fn channels(&self) -> usize {
        (3 + 2 * self.blocks) * self.hidden + self.dim
    }
}

const fn checked_sum<const N: usize>(terms: [usize; N]) -> Option<usize> {
    let mut sum = 0usize;
    let mut n = 0;
    while n < N {
        sum = match sum.checked_add(terms[n]) {
            Some(s) => s,
            None => return None,
        };
        n += 1;
    }
    Some(sum)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The layers tile the vector in order, each of its own size, and the count agrees with
    /// an independent count of the seed notebook's module.
    #[test]
    fn layers_tile_the_vector_in_file_order() {
        let shapes = [
            (1, 0, 2),
            (4, 1, 2),
            (8, 2, 2),
            (48, 2, 2),
            (128, 3, 2),
            (256, 4, 2),
        ];
        let dims = [(4, 1, 1), (8, 2, 3), (16, 0, 8), (32, 2, 16)];
        for (h, b, d) in shapes.into_iter().chain(dims) {
            let lay = Layout::with_dim(h, b, d).unwrap();
            assert_eq!((lay.hidden, lay.blocks, lay.dim), (h, b, d));
            let mut at = 0;
            let mut layers = 0;
            for d in lay.iter() {
                assert_eq!((d.w, d.b), (at, at + d.i * d.o), "{d:?}");
                at = d.end();
                layers += 1;
            }
            assert_eq!(layers, lay.layers());
            assert_eq!(at, lay.len());
            // Linear(1,H), Linear(H,H), Linear(D,H), 2B × Linear(H,H), Linear(H,D).
            let count = (h + h) + (h * h + h) + (d * h + h) + 2 * b * (h * h + h) + (h * d + d);
            assert_eq!(lay.len(), count);
            let biases: usize = lay.iter().map(|d| d.o).sum();
            assert_eq!(lay.channels(), biases);
            let named = |name| {
                lay.named_offsets()
                    .iter()
                    .find(|(n, _)| *n == name)
                    .unwrap()
                    .1
            };
            for k in 0..b {
                let stride = k * named("BLOCK_STRIDE");
                let [first, second] =
                    [Layer::BlockFirst(k), Layer::BlockSecond(k)].map(|l| lay.dense(l));
                assert_eq!(
                    (first.w, first.b),
                    (named("FIRST_W") + stride, named("FIRST_B") + stride)
                );
                assert_eq!(
                    (second.w, second.b),
                    (named("SECOND_W") + stride, named("SECOND_B") + stride)
                );
            }
            assert_eq!(named("OUTPUT_B") + d, lay.len());
        }
        assert_eq!(Layout::of::<128, 3>().len(), 116_482);
        assert_eq!(Layout::new(32, 2), Layout::with_dim(32, 2, 2));
    }

    /// The class embedding's (C + 1) × H rows follow every layer; C = 0 is the layout it
    /// was, and the tensors walk shows the embedding last under its PyTorch shape.
    #[test]
    fn the_class_embedding_follows_every_layer() {
        let plain = Layout::with_dim(8, 2, 3).unwrap();
        assert_eq!(plain.with_classes(0), Some(plain));
        assert_eq!(plain.class_embedding(), None);
        let five = plain.with_classes(5).unwrap();
        assert_eq!(five.len(), plain.len() + 6 * 8);
        assert_eq!(five.class_embedding(), Some(plain.len()..five.len()));
        assert_eq!(
            five.with_classes(0),
            Some(plain),
            "back to the network alone"
        );
        assert_eq!(five.with_classes(2).unwrap().len(), plain.len() + 3 * 8);
        for n in 0..plain.layers() {
            assert_eq!(five.dense(five.layer(n)), plain.dense(plain.layer(n)));
        }
        let mut last = None;
        five.for_each_tensor(|name, shape, at| {
            last = Some((name, [shape[0], shape.get(1).copied().unwrap_or(0)], at))
        });
        assert_eq!(
            last,
            Some((TensorName::CLASS_EMBEDDING, [6, 8], plain.len()..five.len()))
        );
        assert_eq!(plain.with_classes(usize::MAX), None);
        assert_eq!(Layout::new(1 << 20, 1).unwrap().with_classes(1 << 50), None);
    }

    #[test]
    fn a_count_past_usize_is_refused() {
        assert_eq!(Layout::new(usize::MAX, 1), None);
        assert_eq!(Layout::new(1 << 20, usize::MAX), None);
        assert_eq!(Layout::with_dim(1 << 20, 1, usize::MAX), None);
        assert!(Layout::new(1 << 12, 1 << 20).is_some());
    }
}
