//! The two float8 formats inference uses, to and from float32, as PyTorch converts them
//! (`tensor.to(torch.float8_e4m3fn)`, ml_dtypes' `astype`): round to nearest, ties to even;
//! e4m3fn has no infinities, so a value that rounds past its largest finite value (448), an
//! infinity or a NaN becomes NaN (0x7f, with the sign); e5m2 is IEEE-like, so overflow gives an
//! infinity and NaN stays NaN. Subnormal results are kept, not flushed.

/// The byte of a positive NaN in both formats (all bits but the sign).
const NAN: u8 = 0x7f;

/// The shape of a float8 format.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Format {
    /// Exponent bits.
    exponent_bits: u32,
    /// Mantissa bits.
    mantissa_bits: u32,
    /// Whether the all-ones exponent encodes infinity and NaN (IEEE); else only all-ones is NaN.
    ieee: bool,
}

/// float8 e4m3fn: bias 7, largest finite 448, NaN = S.1111.111, no infinity.
pub(crate) const E4M3FN: Format = Format { exponent_bits: 4, mantissa_bits: 3, ieee: false };

/// float8 e5m2: bias 15, largest finite 57344, infinities and NaNs as in IEEE-754.
pub(crate) const E5M2: Format = Format { exponent_bits: 5, mantissa_bits: 2, ieee: true };

impl Format {
    fn bias(self) -> i32 {
        (1 << (self.exponent_bits - 1)) - 1
    }

    /// The byte of +infinity, or of NaN where the format has no infinity.
    fn overflow(self) -> u8 {
        if self.ieee {
            (((1u32 << self.exponent_bits) - 1) << self.mantissa_bits) as u8
        } else {
            NAN
        }
    }

    /// The largest finite value.
    fn max_finite(self) -> f64 {
        let top_exponent = (1i32 << self.exponent_bits) - 1 - self.bias();
        let (exponent, mantissa) = if self.ieee {
            (top_exponent - 1, (1u32 << self.mantissa_bits) - 1) // all-ones exponent reserved
        } else {
            (top_exponent, (1u32 << self.mantissa_bits) - 2) // all-ones mantissa is NaN
        };
        (1.0 + f64::from(mantissa) / f64::from(1u32 << self.mantissa_bits)) * pow2(exponent)
    }

    /// The smallest normal exponent (unbiased).
    fn min_exponent(self) -> i32 {
        1 - self.bias()
    }

    /// `x` rounded to this format, to nearest with ties to even.
    pub(crate) fn encode_f32(self, x: f32) -> u8 {
        let sign = if x.is_sign_negative() { 0x80u8 } else { 0 };
        if x.is_nan() {
            return sign | NAN;
        }
        let magnitude = f64::from(x.abs()); // exact
        if magnitude.is_infinite() {
            return sign | self.overflow();
        }
        if magnitude == 0.0 {
            return sign;
        }
        // The spacing of representable values around `magnitude` (subnormals share the smallest
        // normal exponent's spacing); dividing by a power of two is exact in f64.
        let exponent = exponent_of(magnitude).max(self.min_exponent());
        let step = pow2(exponent - self.mantissa_bits as i32);
        let rounded = (magnitude / step).round_ties_even() * step;
        if rounded > self.max_finite() {
            return sign | self.overflow();
        }
        sign | self.encode(rounded)
    }

    /// The bits of a representable magnitude (`value` ≤ the largest finite value).
    fn encode(self, value: f64) -> u8 {
        if value == 0.0 {
            return 0;
        }
        let units = 1u32 << self.mantissa_bits;
        let exponent = exponent_of(value);
        if exponent < self.min_exponent() {
            let mantissa = value / pow2(self.min_exponent() - self.mantissa_bits as i32);
            return mantissa as u8; // a subnormal: exponent field 0
        }
        let fraction = value / pow2(exponent) - 1.0; // in [0, 1)
        let mantissa = (fraction * f64::from(units)) as u32;
        (((exponent + self.bias()) as u32) << self.mantissa_bits | mantissa) as u8
    }

    /// The value of `byte`, exactly (every float8 value is a float32).
    pub(crate) fn decode(self, byte: u8) -> f32 {
        let sign = if byte & 0x80 != 0 { -1.0f32 } else { 1.0 };
        let field = u32::from(byte & 0x7f);
        let exponent_field = field >> self.mantissa_bits;
        let mantissa = field & ((1 << self.mantissa_bits) - 1);
        let all_ones = (1 << self.exponent_bits) - 1;
        if self.ieee && exponent_field == all_ones {
            return if mantissa == 0 { sign * f32::INFINITY } else { f32::NAN };
        }
        if !self.ieee && field == u32::from(NAN) {
            return f32::NAN;
        }
        let units = (1u32 << self.mantissa_bits) as f32;
        let magnitude = if exponent_field == 0 {
            mantissa as f32 / units * pow2_f32(self.min_exponent())
        } else {
            (1.0 + mantissa as f32 / units) * pow2_f32(exponent_field as i32 - self.bias())
        };
        sign * magnitude
    }
}

/// 2^exponent, exactly (`powi`'s precision is unspecified), for |exponent| ≤ 1022.
fn pow2(exponent: i32) -> f64 {
    f64::from_bits(((exponent + 1023) as u64) << 52)
}

/// 2^exponent as an f32, exactly, for -126 ≤ exponent ≤ 127 (every float8 exponent).
fn pow2_f32(exponent: i32) -> f32 {
    f32::from_bits(((exponent + 127) as u32) << 23)
}

/// floor(log2(value)) of a positive, finite f64, from its bits (exact).
fn exponent_of(value: f64) -> i32 {
    let biased = ((value.to_bits() >> 52) & 0x7ff) as i32;
    if biased == 0 {
        // f64 subnormal: never reached from an f32 input, but exact all the same.
        return exponent_of(value * pow2(64)) - 64;
    }
    biased - 1023
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_byte_decodes_and_encodes_back_to_itself() {
        for format in [E4M3FN, E5M2] {
            for byte in 0..=255u8 {
                let value = format.decode(byte);
                if value.is_nan() {
                    assert_eq!(format.encode_f32(value) & 0x7f, NAN, "{format:?} {byte:#x}");
                    continue;
                }
                assert_eq!(format.encode_f32(value), byte, "{format:?} {byte:#x} = {value}");
            }
        }
    }

    #[test]
    fn known_values_of_the_formats() {
        assert_eq!(E4M3FN.decode(0x7e), 448.0);
        assert_eq!(E4M3FN.decode(0x01), pow2_f32(-9)); // smallest subnormal
        assert_eq!(E4M3FN.decode(0x08), pow2_f32(-6)); // smallest normal
        assert!(E4M3FN.decode(0xff).is_nan());
        assert_eq!(E5M2.decode(0x7b), 57344.0);
        assert_eq!(E5M2.decode(0x7c), f32::INFINITY);
        assert_eq!(E5M2.decode(0xfc), f32::NEG_INFINITY);
        assert_eq!(E5M2.decode(0x01), pow2_f32(-16));
    }

    #[test]
    fn rounding_is_to_nearest_even_and_overflow_follows_the_format() {
        // e4m3fn: 464 lies halfway between 448 (mantissa 110, even) and 480 (NaN): to 448;
        // anything above rounds past the largest value: NaN, as PyTorch gives.
        assert_eq!(E4M3FN.encode_f32(464.0), 0x7e);
        assert_eq!(E4M3FN.encode_f32(464.5), 0x7f);
        assert_eq!(E4M3FN.encode_f32(-1e9), 0xff);
        assert_eq!(E4M3FN.encode_f32(f32::INFINITY), 0x7f);
        // 1 + 1/16 lies halfway between 1 (even) and 1 + 1/8: to 1; 1 + 3/16 to 1 + 1/4 (even).
        assert_eq!(E4M3FN.decode(E4M3FN.encode_f32(1.0625)), 1.0);
        assert_eq!(E4M3FN.decode(E4M3FN.encode_f32(1.1875)), 1.25);
        // Below half the smallest subnormal: to zero, keeping the sign.
        assert_eq!(E4M3FN.encode_f32(pow2_f32(-11)), 0x00);
        assert_eq!(E4M3FN.encode_f32(-pow2_f32(-11)), 0x80);
        // e5m2: 61440 lies halfway between 57344 (odd mantissa 11) and 65536: up, to infinity.
        assert_eq!(E5M2.encode_f32(61439.0), 0x7b);
        assert_eq!(E5M2.encode_f32(61440.0), 0x7c);
        assert_eq!(E5M2.encode_f32(f32::NEG_INFINITY), 0xfc);
        assert!(E5M2.decode(E5M2.encode_f32(f32::NAN)).is_nan());
    }

    /// Rounding against the definition: the result is a representable value nearest to x (ties:
    /// the even mantissa), over a spread of float32 values across every binade of both formats.
    #[test]
    fn the_result_is_always_a_nearest_representable_value() {
        for format in [E4M3FN, E5M2] {
            let finite: Vec<f32> = (0..=255u8)
                .map(|b| format.decode(b))
                .filter(|v| v.is_finite() && *v >= 0.0)
                .collect();
            let mut bits = 0x3000_0000u32; // 2^-31, below both formats' subnormals
            while bits < 0x4780_0000 {
                // up to 65536
                let x = f32::from_bits(bits);
                let got = format.decode(format.encode_f32(x));
                let best = finite.iter().map(|v| (v - x).abs()).fold(f32::INFINITY, f32::min);
                if x <= format.max_finite() as f32 {
                    assert_eq!((got - x).abs(), best, "{format:?} {x}");
                }
                // About 3000 samples a binade; under Miri (slow) about 200.
                bits += if cfg!(miri) { 0x12_3451 } else { 0x1_2345 };
            }
        }
    }
}
