//! GELU over whole activation buffers, with the derivative the backward pass needs.
//!
//! Both are the core's: [`gelu_and_derivative`] (branch-free, so these loops over a batch
//! vectorise), bit for bit its `gelu` and `gelu_derivative`.

use tinyddpm_core::gelu::gelu_and_derivative;

/// Replaces every pre-activation in `z` with its GELU and writes dGELU/dx into `d`.
#[inline(always)]
pub(crate) fn gelu_with_derivative(z: &mut [f32], d: &mut [f32]) {
    for (z, d) in z.iter_mut().zip(d.iter_mut()) {
        (*z, *d) = gelu_and_derivative(*z);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tinyddpm_core::gelu::{gelu, gelu_derivative};

    #[test]
    fn fills_values_and_derivatives() {
        let mut z = [-3.0f32, 0.0, 0.5, 40.0];
        let mut d = [0.0f32; 4];
        gelu_with_derivative(&mut z, &mut d);
        assert_eq!(z, [gelu(-3.0f32), 0.0, gelu(0.5f32), 40.0]);
        assert_eq!(d, [-3.0f32, 0.0, 0.5, 40.0].map(gelu_derivative));
        assert_eq!(d[3], 1.0);
    }
}
