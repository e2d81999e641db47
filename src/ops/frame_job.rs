//! What a video-frame conversion is, once its tensors have been read (`frame` reads them): the
//! pixel format, colour standard and range, the planes' and the output's addresses and strides,
//! and the float32 arithmetic from samples to R, G, B that the CPU path (`host`) and the GPU
//! kernel (`gpu_frame`, `kernels/frame.cu`) both perform, in the same order.

use super::element::Conversion;
use crate::dtype::DataType;

/// How the samples of a frame are stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PixelFormat {
    /// 8-bit Y plane, then one plane of interleaved Cb, Cr pairs at half resolution.
    Nv12,
    /// 8-bit Y, Cb and Cr planes, chroma at half resolution (YUV420p).
    I420,
    /// NV12 with 16-bit samples (P010: ten significant bits in the high bits).
    P016,
}

/// The colour standard whose matrix turns Y'CbCr into R'G'B'.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Standard {
    /// ITU-R BT.601 (standard definition): Kr = 0.299, Kb = 0.114.
    Bt601,
    /// ITU-R BT.709 (high definition): Kr = 0.2126, Kb = 0.0722.
    Bt709,
}

/// Whether samples use the limited (studio) or the full range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Range {
    /// Y in 16–235 and Cb, Cr in 16–240 (× 256 for 16-bit samples).
    Limited,
    /// Y and Cb, Cr over the whole range of the sample type.
    Full,
}

/// What a frame conversion reads and how it writes colour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FrameFormat {
    /// The sample layout.
    pub pixel: PixelFormat,
    /// The colour matrix.
    pub standard: Standard,
    /// The sample range.
    pub range: Range,
    /// Channel order of the output: B, G, R when true, else R, G, B.
    pub bgr: bool,
}

impl PixelFormat {
    /// The sample type of the planes.
    pub(crate) fn sample(self) -> DataType {
        match self {
            PixelFormat::P016 => DataType::U16,
            _ => DataType::U8,
        }
    }

    /// The format's usual name.
    pub(crate) fn name(self) -> &'static str {
        match self {
            PixelFormat::Nv12 => "NV12",
            PixelFormat::I420 => "I420",
            PixelFormat::P016 => "P016",
        }
    }
}

/// One plane of a batch of frames: the address of sample (0, 0, 0) and byte strides.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Plane {
    /// Address of the first frame's first sample.
    pub data: u64,
    /// Byte stride between frames (0 for a single frame).
    pub frame: i64,
    /// Byte stride between rows.
    pub row: i64,
    /// Byte stride between samples of a row.
    pub column: i64,
}

/// The float32 coefficients of R, G and B in the sample values (0–255 output scale):
/// R = y·Y + r_v·Cr + r_0, G = y·Y + g_u·Cb + g_v·Cr + g_0, B = y·Y + b_u·Cb + b_0.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Coefficients {
    pub y: f32,
    pub r_v: f32,
    pub g_u: f32,
    pub g_v: f32,
    pub b_u: f32,
    pub r_0: f32,
    pub g_0: f32,
    pub b_0: f32,
}

impl Coefficients {
    /// The coefficients of `format`'s standard, range and sample size.
    pub(crate) fn new(format: &FrameFormat) -> Self {
        let (kr, kb) = match format.standard {
            Standard::Bt601 => (0.299, 0.114),
            Standard::Bt709 => (0.2126, 0.0722),
        };
        let kg = 1.0 - kr - kb;
        let unit: f64 = if format.pixel.sample() == DataType::U16 { 256.0 } else { 1.0 };
        let (y_gain, c_gain, y_zero) = match format.range {
            Range::Limited => (255.0 / (219.0 * unit), 255.0 / (224.0 * unit), 16.0 * unit),
            Range::Full => {
                let top = if unit == 1.0 { 255.0 } else { 65535.0 };
                (255.0 / top, 255.0 / top, 0.0)
            }
        };
        let c_zero = 128.0 * unit;
        let r_v = c_gain * 2.0 * (1.0 - kr);
        let g_u = -c_gain * 2.0 * kb * (1.0 - kb) / kg;
        let g_v = -c_gain * 2.0 * kr * (1.0 - kr) / kg;
        let b_u = c_gain * 2.0 * (1.0 - kb);
        let base = -y_gain * y_zero;
        Coefficients {
            y: y_gain as f32,
            r_v: r_v as f32,
            g_u: g_u as f32,
            g_v: g_v as f32,
            b_u: b_u as f32,
            r_0: (base - r_v * c_zero) as f32,
            g_0: (base - (g_u + g_v) * c_zero) as f32,
            b_0: (base - b_u * c_zero) as f32,
        }
    }

    /// R, G, B of one pixel, clamped to [0, 255], as the kernel computes them (`max`/`min` as
    /// CUDA's `fmaxf`/`fminf`, which `clamp` would not mirror for NaN).
    #[allow(clippy::manual_clamp)]
    pub(crate) fn rgb(&self, y: f32, u: f32, v: f32) -> [f32; 3] {
        let cr = self.r_v.mul_add(v, self.r_0);
        let cg = self.g_v.mul_add(v, self.g_u.mul_add(u, self.g_0));
        let cb = self.b_u.mul_add(u, self.b_0);
        [cr, cg, cb].map(|c| self.y.mul_add(y, c).max(0.0).min(255.0))
    }
}

/// A validated frame conversion: the planes, the output's strides and the arithmetic.
#[derive(Debug)]
pub(crate) struct FrameJob {
    /// Frames, rows and columns of the output (luma resolution).
    pub batch: i64,
    pub height: i64,
    pub width: i64,
    pub sample: DataType,
    pub y: Plane,
    /// Cb and Cr share strides (`frame`, `row`, `column` of `u` apply to `v`).
    pub u: Plane,
    pub v: Plane,
    /// Output address and byte strides of (frame, channel, row, column).
    pub dst: u64,
    pub dst_strides: [i64; 4],
    pub coefficients: Coefficients,
    pub blue_first: bool,
    pub conversion: Conversion,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn format(standard: Standard, range: Range) -> FrameFormat {
        FrameFormat { pixel: PixelFormat::Nv12, standard, range, bgr: false }
    }

    #[test]
    fn limited_range_black_white_and_primaries() {
        let c = Coefficients::new(&format(Standard::Bt709, Range::Limited));
        let close =
            |got: [f32; 3], want: [f32; 3]| got.iter().zip(want).all(|(g, w)| (g - w).abs() < 0.02);
        assert!(close(c.rgb(16.0, 128.0, 128.0), [0.0, 0.0, 0.0]));
        assert!(close(c.rgb(235.0, 128.0, 128.0), [255.0, 255.0, 255.0]));
        // BT.709 red (255, 0, 0) is Y 63, Cb 102, Cr 240 in limited range (rounded samples).
        let red = c.rgb(63.0, 102.0, 240.0);
        assert!(red[0] > 253.0 && red[1] < 2.0 && red[2] < 2.0, "{red:?}");
    }

    #[test]
    fn full_range_and_16_bit_samples_scale_to_the_same_values() {
        let eight = Coefficients::new(&format(Standard::Bt601, Range::Limited));
        let sixteen = Coefficients::new(&FrameFormat {
            pixel: PixelFormat::P016,
            ..format(Standard::Bt601, Range::Limited)
        });
        let (a, b) = (eight.rgb(100.0, 90.0, 170.0), sixteen.rgb(25600.0, 23040.0, 43520.0));
        assert!(a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-3), "{a:?} {b:?}");
        let full = Coefficients::new(&format(Standard::Bt601, Range::Full));
        assert_eq!(full.rgb(0.0, 128.0, 128.0), [0.0, 0.0, 0.0]);
        assert!(full.rgb(255.0, 128.0, 128.0).iter().all(|v| (v - 255.0).abs() < 1e-3));
    }
}
