//! What happens to each element on its way from source to destination: a plain copy, or a
//! conversion y = x · scale[c] + offset[c] (one fused multiply-add in float32) into another
//! dtype with round-to-nearest-even and, for uint8, saturation.

use crate::dtype::DataType;
use crate::error::{Error, Result};
use crate::float8;

/// Most channels a per-channel affine of `tb_convert` may have: `count` is 1 or the number of
/// channels, at most this (the GPU kernels carry the coefficients inline).
pub const TB_MAX_CHANNELS: usize = 64;

/// Element types `tb_convert` reads.
pub(crate) const CONVERT_INPUTS: [DataType; 9] = [
    DataType::U8,
    DataType::I8,
    DataType::U16,
    DataType::I16,
    DataType::F16,
    DataType::BF16,
    DataType::F32,
    DataType::F8_E4M3FN,
    DataType::F8_E5M2,
];
/// Element types `tb_convert` writes.
pub(crate) const CONVERT_OUTPUTS: [DataType; 6] = [
    DataType::F16,
    DataType::BF16,
    DataType::F32,
    DataType::U8,
    DataType::F8_E4M3FN,
    DataType::F8_E5M2,
];

/// A dtype conversion with a per-channel affine (one coefficient pair broadcasts).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Conversion {
    /// Source element type.
    pub from: DataType,
    /// Destination element type.
    pub to: DataType,
    /// Multipliers, one per channel or one for all.
    pub scale: Vec<f32>,
    /// Offsets, as many as `scale`.
    pub offset: Vec<f32>,
    /// The source channel each output channel reads (`order[k]` for output channel `k`), one
    /// per channel; empty when every channel reads its own.
    pub order: Vec<u8>,
}

/// The operation applied to every element.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum ElementOp {
    /// Bytes are copied unchanged.
    Copy,
    /// Each element is converted.
    Convert(Conversion),
}

impl Conversion {
    /// Checks the dtypes and the coefficient counts against the number of channels.
    pub(crate) fn new(
        from: DataType,
        to: DataType,
        scale: Vec<f32>,
        offset: Vec<f32>,
        channels: Option<i64>,
    ) -> Result<Self> {
        if !CONVERT_INPUTS.contains(&from) {
            return Err(Error::not_supported(format!(
                "tb_convert reads uint8, int8, uint16, int16, float16, bfloat16, float32, \
                 float8_e4m3fn or float8_e5m2, not {from}"
            )));
        }
        if !CONVERT_OUTPUTS.contains(&to) {
            return Err(Error::not_supported(format!(
                "tb_convert writes float16, bfloat16, float32, uint8, float8_e4m3fn or \
                 float8_e5m2, not {to}"
            )));
        }
        if scale.len() != offset.len() || scale.is_empty() {
            return Err(Error::invalid_argument(format!(
                "{} scale and {} offset values given; give the same number, at least one",
                scale.len(),
                offset.len()
            )));
        }
        if scale.len() > 1 {
            let channels = channels.ok_or_else(|| {
                Error::invalid_argument(format!(
                    "{} per-channel values given but the destination layout has no 'C' label",
                    scale.len()
                ))
            })?;
            if scale.len() as i64 != channels {
                return Err(Error::invalid_argument(format!(
                    "{} scale/offset values given for {channels} channels (give 1 or {channels})",
                    scale.len()
                )));
            }
            if scale.len() > TB_MAX_CHANNELS {
                return Err(Error::not_supported(format!(
                    "{} channels: per-channel coefficients are limited to {TB_MAX_CHANNELS}",
                    scale.len()
                )));
            }
        }
        Ok(Conversion { from, to, scale, offset, order: Vec::new() })
    }

    /// The conversion with output channel `k` reading source channel `order[k]` (BGR → RGB:
    /// `[2, 1, 0]`), `channels` being the extent of the destination's `C` label. Each entry lies
    /// in `0..channels`; repeats are allowed (one channel spread over several).
    pub(crate) fn with_channel_order(
        mut self,
        order: &[i64],
        channels: Option<i64>,
    ) -> Result<Self> {
        if order.is_empty() {
            return Ok(self);
        }
        let channels = channels.ok_or_else(|| {
            Error::invalid_argument(
                "a channel order needs a 'C' label in the destination layout".to_string(),
            )
        })?;
        if order.len() as i64 != channels {
            return Err(Error::invalid_argument(format!(
                "a channel order of {} values for {channels} channels (give one per channel)",
                order.len()
            )));
        }
        if order.len() > TB_MAX_CHANNELS {
            return Err(Error::not_supported(format!(
                "{} channels: a channel order is limited to {TB_MAX_CHANNELS}",
                order.len()
            )));
        }
        if let Some((k, &bad)) =
            order.iter().enumerate().find(|&(_, &c)| !(0..channels).contains(&c))
        {
            return Err(Error::invalid_argument(format!(
                "channel order[{k}] = {bad} is not a channel (0..{channels})"
            )));
        }
        let identity = order.iter().enumerate().all(|(k, &c)| c == k as i64);
        // Entries are below TB_MAX_CHANNELS (64): they fit a byte.
        self.order = if identity { Vec::new() } else { order.iter().map(|&c| c as u8).collect() };
        Ok(self)
    }

    /// Whether some output channel reads another source channel.
    pub(crate) fn reorders(&self) -> bool {
        !self.order.is_empty()
    }

    /// The source channel output channel `channel` reads.
    pub(crate) fn source_channel(&self, channel: usize) -> usize {
        self.order.get(channel).map_or(channel, |&c| c as usize)
    }

    /// The output channel of each source channel when the order is a permutation (every source
    /// channel read once); `None` when some channel is read twice.
    pub(crate) fn inverse_order(&self) -> Option<Vec<u8>> {
        let mut inverse = vec![u8::MAX; self.order.len()];
        for (k, &c) in self.order.iter().enumerate() {
            let slot = &mut inverse[c as usize];
            if *slot != u8::MAX {
                return None;
            }
            *slot = k as u8;
        }
        Some(inverse)
    }

    /// y = fma(x, scale[c], offset[c]) in float32, as the GPU computes it.
    pub(crate) fn affine(&self, x: f32, channel: usize) -> f32 {
        let c = if self.scale.len() == 1 { 0 } else { channel };
        x.mul_add(self.scale[c], self.offset[c])
    }
}

/// Reads one element of a `convert` input type from its little-endian bytes as float32.
pub(crate) fn read_as_f32(dtype: DataType, bytes: &[u8]) -> f32 {
    let two = || [bytes[0], bytes[1]];
    match dtype {
        DataType::U8 => f32::from(bytes[0]),
        DataType::I8 => f32::from(bytes[0] as i8),
        DataType::U16 => f32::from(u16::from_le_bytes(two())),
        DataType::I16 => f32::from(i16::from_le_bytes(two())),
        DataType::F16 => half::f16::from_le_bytes(two()).to_f32(),
        DataType::BF16 => half::bf16::from_le_bytes(two()).to_f32(),
        DataType::F8_E4M3FN => float8::E4M3FN.decode(bytes[0]),
        DataType::F8_E5M2 => float8::E5M2.decode(bytes[0]),
        _ => f32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]),
    }
}

/// Writes float32 `y` as a `convert` output type: round to nearest even; uint8 saturates to
/// [0, 255] and turns NaN into 0; float8 as PyTorch converts (see `float8`).
pub(crate) fn write_from_f32(dtype: DataType, y: f32, bytes: &mut [u8]) {
    match dtype {
        DataType::U8 => {
            bytes[0] = if y.is_nan() { 0 } else { y.round_ties_even().clamp(0.0, 255.0) as u8 }
        }
        DataType::F16 => bytes[..2].copy_from_slice(&half::f16::from_f32(y).to_le_bytes()),
        DataType::BF16 => bytes[..2].copy_from_slice(&half::bf16::from_f32(y).to_le_bytes()),
        DataType::F8_E4M3FN => bytes[0] = float8::E4M3FN.encode_f32(y),
        DataType::F8_E5M2 => bytes[0] = float8::E5M2.encode_f32(y),
        _ => bytes[..4].copy_from_slice(&y.to_le_bytes()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uint8_output_rounds_half_to_even_and_saturates() {
        let mut out = [0u8];
        for (y, expected) in
            [(2.5, 2), (3.5, 4), (-7.0, 0), (300.0, 255), (f32::NAN, 0), (254.5, 254)]
        {
            write_from_f32(DataType::U8, y, &mut out);
            assert_eq!(out[0], expected, "{y}");
        }
    }

    #[test]
    fn coefficient_counts_are_checked() {
        let ok = Conversion::new(DataType::U8, DataType::F32, vec![1.0; 3], vec![0.0; 3], Some(3));
        assert!(ok.is_ok());
        let bad = Conversion::new(DataType::U8, DataType::F32, vec![1.0; 2], vec![0.0; 2], Some(3));
        assert!(bad.unwrap_err().message.contains("2 scale/offset values given for 3 channels"));
        let no_c = Conversion::new(DataType::U8, DataType::F32, vec![1.0; 2], vec![0.0; 2], None);
        assert!(no_c.unwrap_err().message.contains("no 'C' label"));
        let out = Conversion::new(DataType::U8, DataType::I32, vec![1.0], vec![0.0], None);
        assert!(out.unwrap_err().message.contains("not int32"));
    }

    #[test]
    fn channel_orders_are_checked_and_inverted() {
        let bgr =
            || Conversion::new(DataType::U8, DataType::F32, vec![1.0], vec![0.0], Some(3)).unwrap();
        let swap = bgr().with_channel_order(&[2, 1, 0], Some(3)).unwrap();
        assert!(swap.reorders());
        assert_eq!((swap.source_channel(0), swap.source_channel(2)), (2, 0));
        assert_eq!(swap.inverse_order(), Some(vec![2, 1, 0]));
        let rotate = bgr().with_channel_order(&[1, 2, 0], Some(3)).unwrap();
        assert_eq!(rotate.inverse_order(), Some(vec![2, 0, 1]));
        let spread = bgr().with_channel_order(&[0, 0, 0], Some(3)).unwrap();
        assert_eq!(spread.inverse_order(), None);
        assert!(!bgr().with_channel_order(&[0, 1, 2], Some(3)).unwrap().reorders());
        let message = |order: &[i64], channels| {
            bgr().with_channel_order(order, channels).unwrap_err().message
        };
        assert!(message(&[2, 1, 0], None).contains("needs a 'C' label"));
        assert!(message(&[1, 0], Some(3)).contains("2 values for 3 channels"));
        assert!(message(&[0, 3, 1], Some(3)).contains("order[1] = 3 is not a channel (0..3)"));
        assert!(message(&[0, -1, 1], Some(3)).contains("order[1] = -1"));
    }

    #[test]
    fn half_types_round_trip_exactly_representable_values() {
        let mut bytes = [0u8; 2];
        for dtype in [DataType::F16, DataType::BF16] {
            write_from_f32(dtype, -1.5, &mut bytes);
            assert_eq!(read_as_f32(dtype, &bytes), -1.5);
        }
    }
}
