//! A valid integer model of any shape for the tests that need one without a quantizer: every
//! weight in range and varied, each layer's requantization keeping activations on the scale
//! its GELU reads.

use tinyddpm_core::QModel;
use tinyddpm_core::quant::Gelu;

/// A valid `QModel<H, B, D>`.
pub fn valid_qmodel<const H: usize, const B: usize, const D: usize>() -> Box<QModel<H, B, D>> {
    let mut q = Box::new(QModel::<H, B, D>::ZERO);
    let mut n = 0i32;
    q.for_each_layer_mut(|l| {
        for w in l.weight.iter_mut() {
            n += 1;
            *w = ((n * 37) % 255 - 127) as i8;
        }
        for (j, b) in l.bias.iter_mut().enumerate() {
            *b = (j as i32 % 7 - 3) * 20_000;
        }
        l.multiplier.fill(1 << 30);
        l.shift.fill(44);
    });
    let gelu = Gelu {
        pre_exp: 10,
        post_exp: 12,
    };
    q.time_act = gelu;
    (q.input_exp, q.input_pre_exp, q.stream_exp, q.output_exp) = (12, 10, 12, 11);
    for b in &mut q.blocks {
        (b.act, b.second_pre_exp) = (gelu, 10);
    }
    q.validate().expect("a valid model");
    q
}
