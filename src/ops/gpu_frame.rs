//! Running a frame conversion (`frame::FrameJob`) on a GPU: one launch of `tb_frame_to_rgb`
//! (kernels/frame.cu), specialised for the sample and output types and for whether the luma rows
//! and the output rows allow aligned vector accesses.

use super::frame::FrameJob;
use super::gpu::{Affine, THREADS, affine_for, all_multiple_of, ceil_div, type_name, unit_of};
use crate::cuda::kernel::{KernelSpec, launch, load};
use crate::dtype::DataType;
use crate::error::Result;
use crate::stream::Stream;

/// Pixels of a row each thread converts (`TB_FRAME_X` in frame.cu).
const PIXELS_PER_THREAD: i64 = 8;

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

/// How the kernel stores a thread's eight pixels of a row (`TB_FRAME_STORE`).
fn store_mode(job: &FrameJob, item: i64) -> i32 {
    let [d_n, d_c, d_y, d_x] = job.dst_strides;
    let dst = job.dst as i64;
    if d_x == item && all_multiple_of(&[dst, d_n, d_c, d_y], unit_of(PIXELS_PER_THREAD * item)) {
        1 // planar rows
    } else if d_c == item
        && d_x == 3 * item
        && all_multiple_of(&[dst, d_n, d_y], unit_of(3 * PIXELS_PER_THREAD * item))
    {
        2 // interleaved pixels
    } else {
        0
    }
}

/// The `-D` defines of the kernel `job` runs.
fn defines(job: &FrameJob) -> Vec<String> {
    let sample = job.sample.item_size();
    let luma_vector = job.y.column == sample
        && all_multiple_of(
            &[job.y.data as i64, job.y.frame, job.y.row],
            unit_of(PIXELS_PER_THREAD * sample),
        );
    let tin = if job.sample == DataType::U16 { "tb_u16" } else { "tb_u8" };
    vec![
        "TB_FRAME".into(),
        "TB_AFFINE=1".into(),
        format!("TB_TIN={tin}"),
        format!("TB_TOUT={}", type_name(job.conversion.to)),
        format!("TB_FRAME_Y_VECTOR={}", luma_vector as i32),
        format!("TB_FRAME_STORE={}", store_mode(job, job.conversion.to.item_size())),
    ]
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
    let threads = job.batch * (job.height / 2) * ceil_div(job.width, PIXELS_PER_THREAD);
    let blocks = ceil_div(threads, THREADS as i64).min(1 << 20);
    let function = load(ordinal, &KernelSpec { entry: "tb_frame_to_rgb", defines: defines(job) })?;
    launch(ordinal, function, blocks as u64, THREADS, stream, &params)
}

#[cfg(test)]
/// Frame kernels worth compiling without a GPU: both sample types into every output type, the
/// store modes and the scalar luma path taking turns (each combination is compiled once somewhere).
pub(crate) fn specialisations() -> Vec<KernelSpec> {
    use super::element::CONVERT_OUTPUTS;
    let pairs = ["tb_u8", "tb_u16"].into_iter().flat_map(|t| CONVERT_OUTPUTS.map(|o| (t, o)));
    pairs
        .enumerate()
        .map(|(i, (tin, out))| {
            let (vector, store) = [(1, 1), (1, 2), (0, 0)][i % 3];
            let defines = vec![
                "TB_FRAME".into(),
                "TB_AFFINE=1".into(),
                format!("TB_TIN={tin}"),
                format!("TB_TOUT={}", type_name(out)),
                format!("TB_FRAME_Y_VECTOR={vector}"),
                format!("TB_FRAME_STORE={store}"),
            ];
            KernelSpec { entry: "tb_frame_to_rgb", defines }
        })
        .collect()
}
