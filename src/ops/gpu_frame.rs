//! Running a frame conversion (`frame::FrameJob`) on a GPU: one launch of `tb_frame_to_rgb`
//! (kernels/frame.cu), specialised for the sample and output types and for whether the luma rows
//! and the output rows allow aligned vector accesses.

use super::frame_job::FrameJob;
use super::gpu::{Affine, THREADS, affine_for, all_multiple_of, ceil_div, type_name, unit_of};
use crate::cuda::kernel::{KernelSpec, launch, load};
use crate::dtype::DataType;
use crate::error::Result;
use crate::stream::Stream;
use std::sync::OnceLock;

/// How the work is cut: pixels of a row per thread, rows per thread, streaming stores.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Tiling {
    pixels: i64,
    rows: i64,
    streaming: bool,
}

/// The tiling for `job`: what the H100 sweep measured best (bench/frame_tiling_sweep.py,
/// bench/RESULTS.md) — one row per thread, streaming stores, and as many pixels as make a
/// planar row store 16 bytes (4 for float32, 8 for 2-byte outputs) or, for 1-byte and
/// interleaved outputs, 8 — unless `TENSORBRIDGE_FRAME_KERNEL=pixels,rows,streaming` (e.g.
/// `8,2,0`) names one: a tuning knob for benchmarks; an unreadable value is ignored.
fn tiling(job: &FrameJob) -> Tiling {
    static FORCED: OnceLock<Option<Tiling>> = OnceLock::new();
    let forced = FORCED.get_or_init(|| {
        let text = std::env::var("TENSORBRIDGE_FRAME_KERNEL").ok()?;
        let parts: Vec<i64> = text.split(',').filter_map(|p| p.trim().parse().ok()).collect();
        match parts[..] {
            [pixels @ (4 | 8 | 16), rows @ (1 | 2), streaming @ (0 | 1)] => {
                Some(Tiling { pixels, rows, streaming: streaming == 1 })
            }
            _ => None,
        }
    });
    forced.unwrap_or_else(|| {
        let item = job.conversion.to.item_size();
        let planar = job.dst_strides[3] == item;
        let pixels = if planar && item >= 4 { 4 } else { 8 };
        Tiling { pixels, rows: 1, streaming: true }
    })
}

/// Mirrors `FrameParams` in frame.cu.
#[repr(C)]
struct FrameParams {
    y: u64,
    u: u64,
    v: u64,
    dst: u64,
    batch: i64,
    height: i64,
    width: i64,
    y_strides: [i64; 3],
    c_strides: [i64; 3],
    d_strides: [i64; 4],
    coefficients: [f32; 8],
    blue_first: i32,
    affine: Affine,
}

/// How the kernel stores a thread's pixels of a row (`TB_FRAME_STORE`).
fn store_mode(job: &FrameJob, item: i64, pixels: i64) -> i32 {
    let [d_n, d_c, d_y, d_x] = job.dst_strides;
    let dst = job.dst as i64;
    if d_x == item && all_multiple_of(&[dst, d_n, d_c, d_y], unit_of(pixels * item)) {
        1 // planar rows
    } else if d_c == item
        && d_x == 3 * item
        && all_multiple_of(&[dst, d_n, d_y], unit_of(3 * pixels * item))
    {
        2 // interleaved pixels
    } else {
        0
    }
}

/// One specialisation of `tb_frame_to_rgb`: what its `-D` defines say.
struct Variant {
    sample: DataType,
    output: DataType,
    tiling: Tiling,
    /// A thread's luma samples of a row are one aligned load (`TB_FRAME_Y_VECTOR`).
    luma_vector: bool,
    /// A thread's (Cb, Cr) pairs are one aligned load (`TB_FRAME_C_VECTOR`).
    chroma_vector: bool,
    /// `TB_FRAME_STORE` (see `store_mode`).
    store: i32,
}

impl Variant {
    /// The kernel `job` runs with `tiling`.
    fn of(job: &FrameJob, tiling: Tiling) -> Variant {
        let sample = job.sample.item_size();
        let luma_vector = job.y.column == sample
            && all_multiple_of(
                &[job.y.data as i64, job.y.frame, job.y.row],
                unit_of(tiling.pixels * sample),
            );
        // Interleaved (Cb, Cr) pairs (NV12, P016): a thread's pixels/2 pairs are `pixels` samples.
        let chroma_vector = job.u.column == 2 * sample
            && job.v.data == job.u.data + sample as u64
            && all_multiple_of(
                &[job.u.data as i64, job.u.frame, job.u.row],
                unit_of(tiling.pixels * sample),
            );
        let output = job.conversion.to;
        let store = store_mode(job, output.item_size(), tiling.pixels);
        Variant { sample: job.sample, output, tiling, luma_vector, chroma_vector, store }
    }

    fn spec(&self) -> KernelSpec {
        let Tiling { pixels, rows, streaming } = self.tiling;
        let defines = vec![
            "TB_FRAME".into(),
            "TB_AFFINE=1".into(),
            format!("TB_TIN={}", type_name(self.sample)),
            format!("TB_TOUT={}", type_name(self.output)),
            format!("TB_FRAME_X={pixels}"),
            format!("TB_FRAME_ROWS={rows}"),
            format!("TB_FRAME_STREAMING={}", streaming as i32),
            format!("TB_FRAME_Y_VECTOR={}", self.luma_vector as i32),
            format!("TB_FRAME_C_VECTOR={}", self.chroma_vector as i32),
            format!("TB_FRAME_STORE={}", self.store),
        ];
        KernelSpec { entry: "tb_frame_to_rgb", defines }
    }
}

/// Enqueues `job` on `stream` of device `ordinal`.
pub(crate) fn run_frames(job: &FrameJob, ordinal: i32, stream: Stream) -> Result<()> {
    let c = &job.coefficients;
    let params = FrameParams {
        y: job.y.data,
        u: job.u.data,
        v: job.v.data,
        dst: job.dst,
        batch: job.batch,
        height: job.height,
        width: job.width,
        y_strides: [job.y.frame, job.y.row, job.y.column],
        c_strides: [job.u.frame, job.u.row, job.u.column],
        d_strides: job.dst_strides,
        coefficients: [c.y, c.r_v, c.g_u, c.g_v, c.b_u, c.r_0, c.g_0, c.b_0],
        blue_first: job.blue_first as i32,
        affine: affine_for(&job.conversion),
    };
    let tiling = tiling(job);
    let threads = job.batch * (job.height / tiling.rows) * ceil_div(job.width, tiling.pixels);
    let blocks = ceil_div(threads, THREADS as i64).min(1 << 20);
    let function = load(ordinal, &Variant::of(job, tiling).spec())?;
    launch(ordinal, function, blocks as u64, THREADS, stream, &params, false)
}

#[cfg(test)]
/// Frame kernels worth compiling without a GPU: both sample types into every output type, the
/// store modes and the scalar luma path taking turns (each combination is compiled once somewhere).
pub(crate) fn specialisations() -> Vec<KernelSpec> {
    use super::element::CONVERT_OUTPUTS;
    let pairs = [DataType::U8, DataType::U16]
        .into_iter()
        .flat_map(|sample| CONVERT_OUTPUTS.map(|output| (sample, output)));
    pairs
        .enumerate()
        .map(|(i, (sample, output))| {
            let (vector, store) = [(true, 1), (true, 2), (false, 0)][i % 3];
            let (pixels, rows, streaming) =
                [(8, 2, false), (4, 1, true), (16, 1, false), (8, 1, true)][(i / 3) % 4];
            let tiling = Tiling { pixels, rows, streaming };
            let variant = Variant {
                sample,
                output,
                tiling,
                luma_vector: vector,
                chroma_vector: vector,
                store,
            };
            variant.spec()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    /// Compiles every frame-kernel specialisation for sm_90 with NVRTC (no GPU needed).
    #[test]
    fn every_frame_kernel_specialisation_compiles_for_sm_90() {
        crate::cuda::kernel::compile_all_for_sm_90(&super::specialisations());
    }
}
