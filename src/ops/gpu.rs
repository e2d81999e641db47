//! Running a plan on a GPU: a driver memcpy for contiguous copies, the element-wise kernel for
//! conversions of one dense run (same layout), the interleave / deinterleave / tiled transpose
//! kernels for batched transposes (rows padded to a pitch included) whose alignment allows wide
//! accesses, and the general kernel for everything else.

use super::element::{Conversion, ElementOp, TB_MAX_CHANNELS};
use super::plan::{Dim, Plan, Shape, TransposeDims};
use crate::cuda::kernel::{Function, KernelSpec, launch, load};
use crate::cuda::memory::copy_bytes;
use crate::dtype::DataType;
use crate::error::{Error, Result};
use crate::stream::Stream;
use std::cell::RefCell;

/// Mirrors `Affine` in layout.cu.
#[repr(C)]
#[derive(Clone, Copy)]
pub(super) struct Affine {
    scale: [f32; TB_MAX_CHANNELS],
    offset: [f32; TB_MAX_CHANNELS],
    channels: i32,
    order: [u8; TB_MAX_CHANNELS],
    inverse: [u8; TB_MAX_CHANNELS],
}

/// Mirrors `TransposeParams` in layout.cu.
#[repr(C)]
pub(crate) struct TransposeParams {
    src: u64,
    dst: u64,
    batch: i64,
    r_extent: i64,
    s_extent: i64,
    src_b: i64,
    src_s: i64,
    dst_b: i64,
    dst_r: i64,
    inner_batch: i64,
    src_ib: i64,
    dst_ib: i64,
    channel_is_r: i32,
    affine: Affine,
}

/// Mirrors `ElementwiseParams` in layout.cu.
#[repr(C)]
pub(crate) struct ElementwiseParams {
    src: u64,
    dst: u64,
    count: i64,
    head: i64,
    inner: i64,
    channels: i64,
    affine: Affine,
}

/// Mirrors `GeneralParams` in layout.cu.
#[repr(C)]
pub(crate) struct GeneralParams {
    src: u64,
    dst: u64,
    count: i64,
    extent: [i64; 15],
    src_stride: [i64; 15],
    dst_stride: [i64; 15],
    channel_dim: i32,
    affine: Affine,
}

pub(super) const THREADS: u32 = 256;
/// Largest channel count of the register (interleave / deinterleave) kernels.
const SMALL_MAX: i64 = 8;

/// scale 1, offset 0 (what a copy's kernels are given; they do not apply it).
const NO_AFFINE: Affine = Affine {
    scale: [1.0; TB_MAX_CHANNELS],
    offset: [0.0; TB_MAX_CHANNELS],
    channels: 1,
    order: IDENTITY,
    inverse: IDENTITY,
};

/// Channel k reads channel k.
const IDENTITY: [u8; TB_MAX_CHANNELS] = {
    let mut identity = [0u8; TB_MAX_CHANNELS];
    let mut k = 0;
    while k < TB_MAX_CHANNELS {
        identity[k] = k as u8;
        k += 1;
    }
    identity
};

fn affine_of(op: &ElementOp) -> Affine {
    match op {
        ElementOp::Convert(c) => affine_for(c),
        ElementOp::Copy => NO_AFFINE,
    }
}

/// The kernels' form of a conversion's coefficients.
pub(super) fn affine_for(c: &Conversion) -> Affine {
    let mut affine = NO_AFFINE;
    affine.scale[..c.scale.len()].copy_from_slice(&c.scale);
    affine.offset[..c.offset.len()].copy_from_slice(&c.offset);
    affine.channels = c.scale.len() as i32;
    affine.order[..c.order.len()].copy_from_slice(&c.order);
    if let Some(inverse) = c.inverse_order() {
        affine.inverse[..inverse.len()].copy_from_slice(&inverse);
    }
    affine
}

pub(super) fn type_name(dtype: DataType) -> &'static str {
    match dtype {
        DataType::U8 => "tb_u8",
        DataType::I8 => "tb_i8",
        DataType::U16 => "tb_u16",
        DataType::I16 => "tb_i16",
        DataType::F16 => "tb_f16",
        DataType::BF16 => "tb_bf16",
        DataType::F8_E4M3FN => "tb_f8e4m3fn",
        DataType::F8_E5M2 => "tb_f8e5m2",
        _ => "tb_f32",
    }
}

fn raw_type(item_size: i64) -> &'static str {
    match item_size {
        1 => "tb_raw1",
        2 => "tb_raw2",
        4 => "tb_raw4",
        8 => "tb_raw8",
        _ => "tb_raw16",
    }
}

/// The `-D` defines naming the element types and whether the affine applies.
fn type_defines(plan: &Plan, op: &ElementOp) -> Vec<String> {
    match op {
        ElementOp::Copy => types(raw_type(plan.src_item), raw_type(plan.dst_item), false),
        ElementOp::Convert(c) => {
            let mut defines = types(type_name(c.from), type_name(c.to), true);
            if c.reorders() {
                defines.push("TB_REORDER=1".into());
            }
            defines
        }
    }
}

/// The conversion's channel order, when it has one (not every channel reads its own).
fn reordering(op: &ElementOp) -> Option<&Conversion> {
    match op {
        ElementOp::Convert(c) if c.reorders() => Some(c),
        _ => None,
    }
}

fn types(tin: &str, tout: &str, affine: bool) -> Vec<String> {
    vec![format!("TB_TIN={tin}"), format!("TB_TOUT={tout}"), format!("TB_AFFINE={}", affine as i32)]
}

#[cfg(test)]
fn with(mut defines: Vec<String>, extra: String) -> Vec<String> {
    defines.push(extra);
    defines
}

#[cfg(test)]
/// The kernel specialisations worth compiling in a check without a GPU: every raw size with every
/// small channel count, tile and rank, and every conversion pair with the kernels it uses.
pub(crate) fn specialisations() -> Vec<KernelSpec> {
    use super::element::{CONVERT_INPUTS, CONVERT_OUTPUTS};
    let spec = |entry: &'static str, defines: Vec<String>| KernelSpec { entry, defines };
    let mut all = Vec::new();
    for size in [1, 2, 4, 8, 16] {
        let raw = types(raw_type(size), raw_type(size), false);
        for small in 1..=SMALL_MAX {
            let vec = format!("TB_VEC={}", (16 / size).max(1));
            let small_defines = with(with(raw.clone(), format!("TB_SMALL={small}")), vec);
            all.push(spec(
                "tb_deinterleave",
                with(small_defines.clone(), "TB_DEINTERLEAVE".into()),
            ));
            let interleave =
                with(with(small_defines.clone(), "TB_INTERLEAVE".into()), "TB_ILP=2".into());
            all.push(spec("tb_interleave", interleave));
            // The register kernels' 64-byte runs (PLANE_RUN_BYTES) with 8-byte planes or rows.
            if size <= 8
                && PLANE_RUN_BYTES % (small * size) == 0
                && PLANE_RUN_BYTES / (small * size) * size == 8
            {
                let vec = format!("TB_VEC={}", PLANE_RUN_BYTES / (small * size));
                let mut run = with(with(raw.clone(), format!("TB_SMALL={small}")), vec);
                staged(PLANE_RUN_BYTES, STAGED_MIN_BYTES, &mut run);
                all.push(spec("tb_deinterleave", with(run.clone(), "TB_DEINTERLEAVE".into())));
                all.push(spec("tb_interleave", with(run, "TB_INTERLEAVE".into())));
            }
            // Runs of 16·small bytes a thread: staged through the warp where `staged` says so.
            let mut staged_defines = small_defines;
            if staged(16 * small, STAGED_MIN_BYTES, &mut staged_defines) {
                all.push(spec(
                    "tb_deinterleave",
                    with(staged_defines.clone(), "TB_DEINTERLEAVE".into()),
                ));
                all.push(spec("tb_interleave", with(staged_defines, "TB_INTERLEAVE".into())));
            }
        }
        // Narrower register kernels, two chunks a thread: batch strides (row pitches) aligned
        // to less than 16 bytes.
        let narrow = format!("TB_VEC={}", (8 / size).max(1));
        let narrow = with(with(with(raw.clone(), "TB_SMALL=3".into()), narrow), "TB_ILP=2".into());
        all.push(spec("tb_deinterleave", with(narrow.clone(), "TB_DEINTERLEAVE".into())));
        all.push(spec("tb_interleave", with(narrow, "TB_INTERLEAVE".into())));
        // Tile shapes: C = 64 both ways, C = 32, 8 and 4 (16-byte items), and small extents.
        let extents = [
            (64, 1 << 20),
            (1 << 20, 64),
            (32, 1 << 20),
            (8, 1 << 20),
            (1 << 20, 4),
            (64, 32),
            (16, 16),
        ];
        let shapes: std::collections::BTreeSet<(i64, i64)> =
            extents.into_iter().map(|(r, s)| tile_shape(size, r, s)).collect();
        for (tile_r, tile_s) in shapes {
            let tiled = with(
                with(raw.clone(), format!("TB_TILE_R={tile_r}")),
                format!("TB_TILE_S={tile_s}"),
            );
            all.push(spec("tb_transpose_tiled", tiled));
        }
        all.push(spec(
            "tb_general",
            with(raw, format!("TB_RANK={}", if size == 1 { 15 } else { 4 })),
        ));
    }
    for from in CONVERT_INPUTS {
        for to in CONVERT_OUTPUTS {
            let typed = types(type_name(from), type_name(to), true);
            let vec = format!("TB_VEC={}", (16 / to.item_size()).max(1));
            let small_defines = with(with(typed.clone(), "TB_SMALL=3".to_string()), vec);
            all.push(spec(
                "tb_deinterleave",
                with(small_defines.clone(), "TB_DEINTERLEAVE".into()),
            ));
            let interleave = with(with(small_defines, "TB_INTERLEAVE".into()), "TB_ILP=2".into());
            all.push(spec("tb_interleave", interleave));
            all.push(spec("tb_general", with(typed, "TB_RANK=3".to_string())));
            // The element-wise kernel as `choose` specialises it for an aligned run, and for a
            // source one element off (a narrower alignment on one side).
            let conversion = Conversion::new(from, to, vec![1.0], vec![0.0], None).unwrap();
            let plan = Plan {
                dims: vec![Dim { extent: 1000, src: from.item_size(), dst: to.item_size() }],
                channel: None,
                src_item: from.item_size(),
                dst_item: to.item_size(),
                count: 1000,
            };
            let offsets: &[u64] = match (from, to) {
                (DataType::U8, DataType::F32 | DataType::F8_E4M3FN)
                | (DataType::F32, DataType::U8 | DataType::F8_E5M2)
                | (DataType::F8_E4M3FN, DataType::BF16) => &[0, from.item_size() as u64],
                _ => &[0],
            };
            for &offset in offsets {
                let Work::Launch { spec, .. } =
                    elementwise(&plan, &conversion, (1 << 32) + offset, 1 << 33)
                else {
                    unreachable!("the element-wise kernel is a launch")
                };
                all.push(spec);
            }
            // Per-channel tables (3 and 64 rows: fewer copies, or one copy built in place).
            if from.item_size() == 1 {
                for channels in [3, 64] {
                    let n = channels as usize;
                    let conversion =
                        Conversion::new(from, to, vec![0.5; n], vec![1.0; n], Some(channels))
                            .unwrap();
                    let plan = Plan {
                        dims: vec![
                            Dim { extent: channels, src: 1000, dst: 1000 * to.item_size() },
                            Dim { extent: 1000, src: 1, dst: to.item_size() },
                        ],
                        channel: Some(0),
                        ..plan.clone()
                    };
                    let Work::Launch { spec, .. } =
                        elementwise(&plan, &conversion, 1 << 32, 1 << 33)
                    else {
                        unreachable!("the element-wise kernel is a launch")
                    };
                    if spec.defines.iter().any(|d| d.starts_with("TB_TABLE=")) {
                        all.push(spec);
                    }
                }
            }
        }
    }
    // Channel reorders (tb_convert_channels): the three kernels that take one.
    let reordered = with(types("tb_u8", "tb_f32", true), "TB_REORDER=1".into());
    let small = with(with(reordered.clone(), "TB_SMALL=3".into()), "TB_VEC=4".into());
    all.push(spec("tb_deinterleave", with(small.clone(), "TB_DEINTERLEAVE".into())));
    all.push(spec("tb_interleave", with(small, "TB_INTERLEAVE".into())));
    all.push(spec("tb_general", with(reordered, "TB_RANK=3".into())));
    all
}

/// Bytes of one tile of the tiled transpose, one block's shared memory (8 and 32 KiB tiles ran
/// slower on the H100: 0.86-0.95 and 0.89-0.97 of copy where these run at 0.96-0.99).
const TILE_BYTES: i64 = 16384;
/// Items along the tile's side that lies along the smaller of the two extents: a whole channel
/// row of C = 64, so each tile reads (NHWC -> NCHW) or writes (NCHW -> NHWC) one contiguous block.
const TILE_SIDE: i64 = 64;

/// The largest power of two up to `limit` items that `extent` holds, but at least one 16-byte
/// vector of `item_size` items: a tile side with no partial tiles where the extent allows.
fn tile_side(item_size: i64, limit: i64, extent: i64) -> i64 {
    let vector = (16 / item_size).max(1);
    let mut side = limit;
    while side > vector && side > extent {
        side /= 2;
    }
    side
}

/// Tile extents (along r, along s): up to [`TILE_SIDE`] items along the smaller extent and the
/// rest of [`TILE_BYTES`] along the larger.
fn tile_shape(item_size: i64, r_extent: i64, s_extent: i64) -> (i64, i64) {
    let side = tile_side(item_size, TILE_SIDE, r_extent.min(s_extent));
    let other = tile_side(item_size, TILE_BYTES / (side * item_size), r_extent.max(s_extent));
    if r_extent <= s_extent { (side, other) } else { (other, side) }
}

/// ⌈a / b⌉ for positive b (i64::div_ceil is not stable).
pub(super) fn ceil_div(a: i64, b: i64) -> i64 {
    (a + b - 1) / b
}

/// The largest power of two ≤ 16 dividing `bytes`: the access width a run of `bytes` allows.
pub(super) fn unit_of(bytes: i64) -> i64 {
    [16, 8, 4, 2].into_iter().find(|u| bytes % u == 0).unwrap_or(1)
}

pub(super) fn all_multiple_of(values: &[i64], unit: i64) -> bool {
    values.iter().all(|v| v % unit == 0)
}

/// Where a plan's two tensors are, and the stream and device it runs on.
pub(crate) struct Target {
    /// Source address of element (0, …, 0).
    pub src: u64,
    /// Destination address.
    pub dst: u64,
    /// Device whose context and stream run the work.
    pub ordinal: i32,
    /// The caller's stream.
    pub stream: Stream,
}

/// The parameter block of one launch, in the form its kernel reads.
#[allow(clippy::large_enum_variant)] // as `Work`: made and consumed once per operation
pub(crate) enum Params {
    /// For the interleave, deinterleave and tiled transpose kernels.
    Transpose(TransposeParams),
    /// For the general kernel.
    General(GeneralParams),
    /// For the element-wise kernel.
    Elementwise(ElementwiseParams),
}

/// What the GPU does for a plan: nothing, a driver copy, or one kernel launch. [`run`] carries it
/// out; [`Work::name`] names it for `tb_reformat_plan` and `tb_convert_plan`. Choosing it needs
/// no GPU: it depends only on the plan, the operation and the two addresses' alignment.
// Made once per operation and consumed at once: boxing the parameters would only add an allocation.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Work {
    /// Nothing to move.
    Nothing,
    /// One driver device-to-device copy.
    Memcpy {
        /// Bytes copied.
        bytes: i64,
    },
    /// One kernel launch.
    Launch {
        /// The kernel: entry point and the defines that specialise it.
        spec: KernelSpec,
        /// Blocks of [`THREADS`] threads.
        blocks: i64,
        /// The kernel's one argument.
        params: Params,
    },
}

impl Work {
    /// The kernel family then its compile-time choices, lower case, from the defines that
    /// specialise it (the element types left out): `"memcpy"`, `"deinterleave small=3 vec=16"`,
    /// `"interleave small=3 vec=4 ilp=2"`, `"interleave small=8 vec=4 staged ilp=1"`,
    /// `"transpose_tiled tile_r=64 tile_s=256"`,
    /// `"elementwise vec=16 ilp=2 align_in=16 align_out=16"`, `"general rank=4"`, or `"none"`
    /// when there is nothing to move.
    pub(crate) fn name(&self) -> String {
        match self {
            Work::Nothing => "none".into(),
            Work::Memcpy { .. } => "memcpy".into(),
            Work::Launch { spec, .. } => {
                let mut name = spec.entry.trim_start_matches("tb_").to_string();
                for define in &spec.defines {
                    let Some((key, value)) = define.split_once('=') else {
                        if define == "TB_STAGE" {
                            name.push_str(" staged");
                        }
                        continue;
                    };
                    if !matches!(key, "TB_TIN" | "TB_TOUT" | "TB_AFFINE" | "TB_THREADS") {
                        let key = key.trim_start_matches("TB_").to_ascii_lowercase();
                        name.push_str(&format!(" {key}={value}"));
                    }
                }
                name
            }
        }
    }
}

/// Chooses the GPU work for `plan` with `op`, from a source at address `src` to a destination
/// at address `dst`.
pub(crate) fn choose(plan: &Plan, op: &ElementOp, src: u64, dst: u64) -> Result<Work> {
    match plan.shape() {
        Shape::Empty => Ok(Work::Nothing),
        Shape::Contiguous if *op == ElementOp::Copy => {
            Ok(Work::Memcpy { bytes: plan.count * plan.src_item })
        }
        // The element-wise kernel keeps each element's channel: a reorder takes the general one.
        Shape::Contiguous | Shape::Dense if reordering(op).is_some() => general(plan, op, src, dst),
        Shape::Contiguous | Shape::Dense => match op {
            ElementOp::Convert(conversion) => Ok(elementwise(plan, conversion, src, dst)),
            // A copy is dense only when contiguous (equal element sizes, no channel).
            ElementOp::Copy => general(plan, op, src, dst),
        },
        Shape::Transpose => transpose(plan, op, src, dst),
        Shape::General => general(plan, op, src, dst),
    }
}

/// Shared-memory bytes a lookup table may take, its copies and the one plain copy they are made
/// from together (a quarter of what an SM holds for 8 blocks of 256 threads at most).
const TABLE_BUDGET: i64 = 24 << 10;

/// Whether the element-wise kernel converts through a per-block lookup table, and its shape:
/// (rows, copies). A 1-byte input has 256 values; a table of convert()'s results (one row of 256
/// per channel) turns a 1-byte encode (to float8, say) into a shared-memory load. Copies (a
/// power of two ≤ 32, as many as the budget allows) keep the lanes of a warp on distinct banks.
/// Wider outputs get no table: u8 and i8 convert in two instructions, float8 decodes in four
/// with the hardware conversion of sm_89 and later (each block building its table delayed its
/// loads: decodes to 2- and 4-byte types ran at 0.89-0.93 of copy on the H200).
fn table_for(conversion: &Conversion, channels: i64) -> Option<(i64, i64)> {
    let (e_in, e_out) = (conversion.from.item_size(), conversion.to.item_size());
    if e_in != 1 || e_out != 1 {
        return None;
    }
    let plain = channels * 256 * e_out;
    let copies = [32, 16, 8, 4, 2].into_iter().find(|&c| plain * (c + 1) <= TABLE_BUDGET);
    match copies {
        Some(copies) => Some((channels, copies)),
        // One copy, built in place: up to 32 KiB (64 channels of 1-byte results).
        None if plain <= 32 << 10 => Some((channels, 1)),
        None => None,
    }
}

/// The element-wise kernel over one dense run: chunks of `V` elements. A destination wider than
/// the source takes 16-byte loads, each chunk's 32-128 bytes stored through the warp (both sides
/// 16-byte aligned); otherwise chunks are 16 bytes on the destination side. Stored directly, a
/// thread's run wider than 16 bytes makes every store instruction of a warp fill part of 32
/// sectors (H100: float8 → float32 0.54 of copy with 64-byte runs, 0.94 with 16-byte stores and
/// 4-byte loads, 0.96 staged; → float16 0.89 / 0.96 / 0.97). The head (fewer than `V` elements
/// converted one by one) is chosen so that every chunk is as aligned as the two addresses allow
/// on both sides.
fn elementwise(plan: &Plan, conversion: &Conversion, src: u64, dst: u64) -> Work {
    let (e_in, e_out) = (plan.src_item, plan.dst_item);
    let (src, dst) = (src as i64, dst as i64);
    // The head for chunks of `vector` elements and the alignments it gives (input, output).
    let layout = |vector: i64| -> (i64, i64, i64) {
        let align = |head: i64| -> (i64, i64) {
            let chunk_in = unit_of(vector * e_in).min(unit_of(src + head * e_in));
            let chunk_out = unit_of(vector * e_out).min(unit_of(dst + head * e_out));
            (chunk_in, chunk_out)
        };
        // Best the narrower of the two alignments, then their sum; the smallest head among equals.
        let head = (0..vector)
            .max_by_key(|&h| {
                let (a, b) = align(h);
                (a.min(b), a + b, -h)
            })
            .unwrap_or(0);
        let (align_in, align_out) = align(head);
        (head, align_in, align_out)
    };
    // A wider destination: 16-byte loads, and each chunk's longer run stored through the warp
    // when both sides line up to 16 bytes.
    let staged_vector = 16 / e_in;
    let staged_run = staged_vector * e_out;
    let staged_layout = (e_out > e_in
        && (ELEMENTWISE_STAGED_MIN_BYTES..=STAGED_MAX_BYTES).contains(&staged_run))
    .then(|| layout(staged_vector))
    .filter(|&(_, align_in, align_out)| align_in == 16 && align_out == 16);
    let vector = if staged_layout.is_some() { staged_vector } else { (16 / e_out).max(1) };
    let (head, align_in, align_out) = staged_layout.unwrap_or_else(|| layout(vector));
    let affine = affine_for(conversion);
    // One coefficient pair: no channel to track.
    let (inner, channels) = match affine.channels {
        1 => (plan.count, 1),
        _ => plan.channel_run(),
    };
    let table = table_for(conversion, channels);
    // Chunks a thread: enough to have 32 bytes of loads in flight (up to 8), and at least four
    // with a table (built once per block for many elements).
    let ilp = (32 / (vector * e_in)).clamp(1, 8).max(if table.is_some() { 4 } else { 1 });
    let mut defines = types(type_name(conversion.from), type_name(conversion.to), true);
    defines.extend([
        "TB_ELEMENTWISE".into(),
        format!("TB_VEC={vector}"),
        format!("TB_ILP={ilp}"),
        format!("TB_ALIGN_IN={align_in}"),
        format!("TB_ALIGN_OUT={align_out}"),
    ]);
    if let Some((rows, copies)) = table {
        defines.push(format!("TB_TABLE={rows}"));
        defines.push(format!("TB_TABLE_COPIES={copies}"));
    }
    if staged_layout.is_some() {
        staged(staged_run, ELEMENTWISE_STAGED_MIN_BYTES, &mut defines);
    }
    let head = head.min(plan.count);
    let chunks = (plan.count - head) / vector;
    let blocks = ceil_div(chunks, THREADS as i64 * ilp).clamp(1, 1 << 20);
    Work::Launch {
        spec: KernelSpec { entry: "tb_elementwise", defines },
        blocks,
        params: Params::Elementwise(ElementwiseParams {
            src: src as u64,
            dst: dst as u64,
            count: plan.count,
            head,
            inner,
            channels,
            affine,
        }),
    }
}

/// Runs `plan` with `op` on the GPU, asynchronously on `target.stream`.
pub(crate) fn run(plan: &Plan, op: &ElementOp, target: &Target) -> Result<()> {
    let (ordinal, stream) = (target.ordinal, target.stream);
    let again = DECIDED.with_borrow(|decided| {
        decided.iter().find(|d| d.decides(plan, op, target)).map(|d| d.launch(stream))
    });
    if let Some(launched) = again {
        return launched;
    }
    match choose(plan, op, target.src, target.dst)? {
        Work::Nothing => Ok(()),
        Work::Memcpy { bytes } => copy_bytes(ordinal, target.dst, target.src, bytes, stream),
        Work::Launch { spec, blocks, params } => {
            let decided = Decided {
                ordinal,
                plan: plan.clone(),
                op: op.clone(),
                src: target.src,
                dst: target.dst,
                function: load(ordinal, &spec)?,
                blocks: blocks as u64,
                params,
            };
            decided.launch(stream)?;
            DECIDED.with_borrow_mut(|remembered| {
                if remembered.len() == REMEMBERED {
                    remembered.remove(0);
                }
                remembered.push(decided);
            });
            Ok(())
        }
    }
}

/// A launch decided for one operation: the kernel and parameters [`choose`] and [`load`] gave for
/// its plan, operation, addresses and device.
struct Decided {
    ordinal: i32,
    plan: Plan,
    op: ElementOp,
    src: u64,
    dst: u64,
    function: Function,
    blocks: u64,
    params: Params,
}

impl Decided {
    /// Whether this is the launch for `plan` and `op` at `target` (`choose` is a function of them).
    fn decides(&self, plan: &Plan, op: &ElementOp, target: &Target) -> bool {
        self.src == target.src
            && self.dst == target.dst
            && self.ordinal == target.ordinal
            && self.plan == *plan
            && self.op == *op
    }

    /// Enqueues the kernel on `stream`.
    fn launch(&self, stream: Stream) -> Result<()> {
        let (ordinal, function, blocks) = (self.ordinal, self.function, self.blocks);
        match &self.params {
            Params::Transpose(p) => launch(ordinal, function, blocks, THREADS, stream, p, true),
            Params::General(p) => launch(ordinal, function, blocks, THREADS, stream, p, true),
            Params::Elementwise(p) => launch(ordinal, function, blocks, THREADS, stream, p, true),
        }
    }
}

/// Launches each thread remembers: an operation repeated on the same buffers (a camera or decoder
/// loop) is enqueued again without choosing its kernel or looking it up. 1080p HWC -> CHW back
/// to back on the H100 took 5.3-8.1 µs a call without, 4.2-5.3 µs with (the GPU's own time
/// 4.2-4.4 µs): the host was the bound.
const REMEMBERED: usize = 8;

thread_local! {
    static DECIDED: RefCell<Vec<Decided>> = const { RefCell::new(Vec::new()) };
}

/// Shortest per-thread run (bytes) the register kernels move through their warp (`TB_STAGE`):
/// accessed directly, runs of 64 bytes or more ran at 0.55–0.88 of copy on the H100 (every
/// instruction of a warp touching 32 sectors, part of each); 48-byte runs did not (0.95–0.99).
const STAGED_MIN_BYTES: i64 = 64;
/// Shortest run the element-wise kernel stores through the warp, where its destination is wider
/// (32: float8 → float16 staged ran at 0.97 of copy on the H100, 0.96 with 16-byte stores).
const ELEMENTWISE_STAGED_MIN_BYTES: i64 = 32;
/// The run (bytes a thread moves on its wide side) the register kernels prefer where it lets the
/// narrow side move 8-16 bytes a plane or row: the run staged through the warp. The interleave
/// then loads 8-16 bytes from each plane instead of feeding 16-byte stores with 1-4-byte plane
/// loads; the deinterleave stores 8-16 bytes a row from 64-byte staged loads instead of 128-byte
/// ones. H100, side by side: C = 4 interleave of 1-4-byte items 0.94-0.97 -> 0.98-1.00 (pitched
/// float32 0.90 -> 1.00); C = 8 interleave of 1-4-byte items 0.94 -> 0.97-0.99; C = 8
/// deinterleave of 1-8-byte items 0.94-0.98 -> 0.98-1.00. 128-byte runs with 8-16-byte plane
/// loads lost to these (0.92 against 0.97 for u8 C = 8).
const PLANE_RUN_BYTES: i64 = 64;
/// Longest staged run: 32 KiB of shared memory for a block of `THREADS`.
const STAGED_MAX_BYTES: i64 = 128;

/// Whether a kernel's wide side (`run` bytes a thread: the deinterleave's loads, the
/// interleave's and the element-wise kernel's stores) goes through the warp-staged accesses, for
/// runs of `shortest` bytes and longer; adds their defines when it does. Runs are whole 16-byte
/// pieces there (the caller checked their 16-byte alignment).
fn staged(run: i64, shortest: i64, defines: &mut Vec<String>) -> bool {
    let staged = (shortest..=STAGED_MAX_BYTES).contains(&run) && run % 16 == 0;
    if staged {
        defines.extend(["TB_STAGE".into(), format!("TB_THREADS={THREADS}")]);
    }
    staged
}

/// The vector (elements a chunk, along the long dimension, whose extent is `long`) of a register
/// kernel whose wide side moves `wide` bytes per element of the vector (channels × item: the
/// deinterleave's loads, the interleave's stores) and whose narrow side `narrow` bytes per
/// element, a plane or row each: a run of PLANE_RUN_BYTES or half that on the wide side where it
/// moves 8–16 bytes a plane or row and `fits` the alignment — one that leaves no partial chunk
/// at the end of `long` first —, else `widest` narrowed until it fits; `None` when nothing fits.
fn register_vector(
    wide: i64,
    narrow: i64,
    long: i64,
    widest: i64,
    fits: impl Fn(i64) -> bool,
) -> Option<i64> {
    let runs: Vec<i64> = [PLANE_RUN_BYTES, PLANE_RUN_BYTES / 2]
        .into_iter()
        .filter(|bytes| bytes % wide == 0)
        .map(|bytes| bytes / wide)
        .filter(|&run| (8..=16).contains(&(run * narrow)) && fits(run))
        .collect();
    let whole = runs.iter().copied().find(|run| long % run == 0);
    whole.or(runs.first().copied()).or_else(|| narrowing(widest).find(|&v| fits(v)))
}

/// A register kernel's chunks a thread, its `wide_run`-byte run staged through the warp where
/// `staged` says so (defines added): two where the narrow side moves less than 16 bytes a plane
/// or row and the run is not staged — too little in flight otherwise (an earlier, unscripted H100
/// comparison favoured it; bench/layout_bench.cpp measures the current choice) — else one.
fn register_ilp(wide_run: i64, narrow_run: i64, defines: &mut Vec<String>) -> i64 {
    let staged = staged(wide_run, STAGED_MIN_BYTES, defines);
    if narrow_run < 16 && !staged { 2 } else { 1 }
}

/// The vector widths to try, widest first: `widest`, then halves while at least a quarter of it
/// (narrower accesses where a batch stride, such as a row pitch, is less aligned than 16 bytes).
fn narrowing(widest: i64) -> impl Iterator<Item = i64> {
    [widest, widest / 2, widest / 4].into_iter().filter(|&v| v >= 1)
}

fn transpose(plan: &Plan, op: &ElementOp, src_address: u64, dst_address: u64) -> Result<Work> {
    let Some(TransposeDims { batch: [outer, inner], r, s, r_index, s_index }) =
        plan.transpose_dims()
    else {
        return general(plan, op, src_address, dst_address);
    };
    let channel_is_r = match plan.channel {
        None => -1,
        Some(c) if c == r_index => 1,
        Some(c) if c == s_index => 0,
        Some(_) => return general(plan, op, src_address, dst_address),
    };
    // A channel order: the deinterleave writes source channel r to its output row (a
    // permutation's inverse), the interleave loads output channel s from its source row.
    let reorder = reordering(op);
    let deinterleave_reorders =
        reorder.is_none_or(|c| channel_is_r == 1 && c.inverse_order().is_some());
    let interleave_reorders = reorder.is_none_or(|_| channel_is_r == 0);
    let (e_in, e_out) = (plan.src_item, plan.dst_item);
    let batch = outer.extent * inner.extent;
    let params = TransposeParams {
        src: src_address,
        dst: dst_address,
        batch,
        r_extent: r.extent,
        s_extent: s.extent,
        src_b: outer.src,
        src_s: s.src,
        dst_b: outer.dst,
        dst_r: r.dst,
        inner_batch: inner.extent,
        src_ib: inner.src,
        dst_ib: inner.dst,
        channel_is_r,
        affine: affine_of(op),
    };
    let (src, dst) = (src_address as i64, dst_address as i64);
    // Where each side's chunks start: the base address and the batch strides.
    let (src_starts, dst_starts) = ([src, outer.src, inner.src], [dst, outer.dst, inner.dst]);
    let mut defines = type_defines(plan, op);
    let widest = e_in.max(e_out);
    let launch = |entry, defines, blocks, params| {
        Ok(Work::Launch {
            spec: KernelSpec { entry, defines },
            blocks,
            params: Params::Transpose(params),
        })
    };
    // The tiled transpose (raw copies, 16-byte aligned) serves where a register kernel would move
    // 16-byte items, one a plane or row per thread, in a staged run (C >= 4): H100, side by side,
    // complex128 C = 4 and 8 at 0.973-0.989 of copy tiled, 0.945-0.981 with the registers
    // (8-byte items at C = 8, also one a row, kept theirs: 0.979-0.988 against 0.962-0.973 tiled).
    let tiles_fit = *op == ElementOp::Copy
        && all_multiple_of(&[src_starts.as_slice(), &dst_starts, &[s.src, r.dst]].concat(), 16);
    let tile_serves = |run: i64| tiles_fit && e_in == 16 && run >= STAGED_MIN_BYTES;
    // Deinterleave: each thread stores one 16-byte run per destination row (narrower where the
    // batch strides are less aligned, then two chunks a thread).
    let fits = |vector: i64| {
        all_multiple_of(&src_starts, unit_of(vector * r.extent * e_in))
            && all_multiple_of(&[dst_starts.as_slice(), &[r.dst]].concat(), unit_of(vector * e_out))
    };
    if r.extent <= SMALL_MAX
        && deinterleave_reorders
        && s.src == r.extent * e_in
        && let Some(vector) =
            register_vector(r.extent * e_in, e_out, s.extent, (16 / e_out).max(1), fits)
        && !tile_serves(r.extent * e_in)
    {
        defines.extend([format!("TB_SMALL={}", r.extent), format!("TB_VEC={vector}")]);
        let ilp = register_ilp(vector * r.extent * e_in, vector * e_out, &mut defines);
        if ilp > 1 {
            defines.push(format!("TB_ILP={ilp}"));
        }
        defines.push("TB_DEINTERLEAVE".into());
        let chunks = batch * ceil_div(s.extent, vector);
        let blocks = ceil_div(chunks, THREADS as i64 * ilp);
        return launch("tb_deinterleave", defines, blocks, params);
    }
    // Interleave: each thread stores V·S elements, one 16-byte access where 16 is a multiple of
    // S·item (else runs of 16 elements of the widest type; narrower where the batch strides are
    // less aligned).
    let widest_vector =
        if 16 % (s.extent * e_out) == 0 { 16 / (s.extent * e_out) } else { (16 / widest).max(1) };
    let fits = |vector: i64| {
        all_multiple_of(&[src_starts.as_slice(), &[s.src]].concat(), unit_of(vector * e_in))
            && all_multiple_of(&dst_starts, unit_of(vector * s.extent * e_out))
    };
    if s.extent <= SMALL_MAX
        && interleave_reorders
        && r.dst == s.extent * e_out
        && let Some(vector) = register_vector(s.extent * e_out, e_in, r.extent, widest_vector, fits)
        && !tile_serves(s.extent * e_out)
    {
        defines.extend([format!("TB_SMALL={}", s.extent), format!("TB_VEC={vector}")]);
        let ilp = register_ilp(vector * s.extent * e_out, vector * e_in, &mut defines);
        defines.extend([format!("TB_ILP={ilp}"), "TB_INTERLEAVE".into()]);
        let chunks = batch * ceil_div(r.extent, vector);
        let blocks = ceil_div(chunks, THREADS as i64 * ilp);
        return launch("tb_interleave", defines, blocks, params);
    }
    if tiles_fit {
        let (tile_r, tile_s) = tile_shape(e_in, r.extent, s.extent);
        defines.extend([format!("TB_TILE_R={tile_r}"), format!("TB_TILE_S={tile_s}")]);
        let tiles = batch * ceil_div(r.extent, tile_r) * ceil_div(s.extent, tile_s);
        return launch("tb_transpose_tiled", defines, tiles, params);
    }
    general(plan, op, src_address, dst_address)
}

fn general(plan: &Plan, op: &ElementOp, src: u64, dst: u64) -> Result<Work> {
    let dims: Vec<Dim> = if plan.dims.is_empty() {
        vec![Dim { extent: 1, src: plan.src_item, dst: plan.dst_item }]
    } else {
        plan.dims.clone()
    };
    if dims.len() > 15 {
        return Err(Error::internal("plan rank above 15"));
    }
    let mut params = GeneralParams {
        src,
        dst,
        count: plan.count,
        extent: [1; 15],
        src_stride: [0; 15],
        dst_stride: [0; 15],
        channel_dim: plan.channel.map_or(-1, |c| c as i32),
        affine: affine_of(op),
    };
    for (i, dim) in dims.iter().enumerate() {
        params.extent[i] = dim.extent;
        params.src_stride[i] = dim.src;
        params.dst_stride[i] = dim.dst;
    }
    let mut defines = type_defines(plan, op);
    defines.push(format!("TB_RANK={}", dims.len()));
    let blocks = ceil_div(plan.count, THREADS as i64).min(1 << 20);
    Ok(Work::Launch {
        spec: KernelSpec { entry: "tb_general", defines },
        blocks,
        params: Params::General(params),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::Device;
    use crate::dims::Dims;
    use crate::layout::Layout;
    use crate::storage::Storage;
    use crate::tensor::{Tensor, TensorDesc};

    /// 16-byte (in fact 4 GiB) aligned stand-in addresses: choosing never dereferences them.
    const SRC: u64 = 1 << 32;
    const DST: u64 = 1 << 33;

    /// A CUDA tensor description at `data` (no GPU needed: nothing reads it).
    fn at(
        data: u64,
        dtype: DataType,
        shape: &[i64],
        strides: Option<&[i64]>,
        layout: &str,
    ) -> Tensor {
        let desc = TensorDesc {
            data,
            device: Device::cuda(0),
            dtype,
            shape: shape.into(),
            strides: strides.map(Dims::from),
            layout: Layout::parse(layout).unwrap(),
            readonly: false,
        };
        Tensor::new(desc, &Storage::with_release(None)).unwrap()
    }

    /// The name of the work that moves `src` into `dst` (in `dst`'s layout) with `op`.
    fn name(src: &Tensor, dst: &Tensor, op: &ElementOp) -> String {
        let view = match dst.layout().is_none() {
            true => src.clone(),
            false => src.permute_to_layout(&dst.layout()).unwrap(),
        };
        let channel = match op {
            ElementOp::Copy => None,
            ElementOp::Convert(_) => dst.layout().find(b'C'),
        };
        let plan = Plan::new(&view, dst, channel).unwrap();
        choose(&plan, op, view.data(), dst.data()).unwrap().name()
    }

    fn to(from: DataType, to: DataType) -> ElementOp {
        ElementOp::Convert(Conversion::new(from, to, vec![1.0], vec![0.0], None).unwrap())
    }

    /// A u8 -> f32 conversion whose output channel k reads source channel `order[k]`.
    fn reordered(order: &[i64]) -> ElementOp {
        let channels = Some(order.len() as i64);
        let conversion =
            Conversion::new(DataType::U8, DataType::F32, vec![1.0], vec![0.0], channels);
        ElementOp::Convert(conversion.unwrap().with_channel_order(order, channels).unwrap())
    }

    /// A channel order keeps the register kernels where they can apply it (the deinterleave a
    /// permutation, through its inverse; the interleave any order) and takes the general kernel
    /// elsewhere, such as the element-wise kernel's same-layout runs.
    #[test]
    fn channel_orders_take_the_kernels_that_apply_them() {
        const F32: DataType = DataType::F32;
        const U8: DataType = DataType::U8;
        let cases: Vec<(&str, Tensor, Tensor, &[i64], &str)> = vec![
            (
                "BGR NHWC -> RGB NCHW",
                at(SRC, U8, &[2, 4, 8, 3], None, "NHWC"),
                at(DST, F32, &[2, 3, 4, 8], None, "NCHW"),
                &[2, 1, 0],
                "deinterleave reorder=1 small=3 vec=4",
            ),
            (
                "one channel spread over three, NHWC -> NCHW: no inverse",
                at(SRC, U8, &[2, 4, 8, 3], None, "NHWC"),
                at(DST, F32, &[2, 3, 4, 8], None, "NCHW"),
                &[0, 0, 0],
                "general reorder=1 rank=3",
            ),
            (
                "BGR NCHW -> RGB NHWC",
                at(SRC, U8, &[2, 3, 4, 8], None, "NCHW"),
                at(DST, F32, &[2, 4, 8, 3], None, "NHWC"),
                &[2, 1, 0],
                "interleave reorder=1 small=3 vec=4 ilp=2",
            ),
            (
                "BGRA HWC -> RGBA HWC (same layout)",
                at(SRC, U8, &[4, 8, 4], None, "HWC"),
                at(DST, F32, &[4, 8, 4], None, "HWC"),
                &[2, 1, 0, 3],
                "general reorder=1 rank=2",
            ),
        ];
        for (case, src, dst, order, expected) in cases {
            assert_eq!(name(&src, &dst, &reordered(order)), expected, "{case}");
        }
    }

    /// The kernel a plan gets, by name, for the layout cases the benchmarks time: each row pins
    /// one decision of `choose` (which family, which vector width, tile and ILP).
    #[test]
    fn each_layout_case_names_the_kernel_it_launches() {
        const F32: DataType = DataType::F32;
        const F64: DataType = DataType::F64;
        let c128 = DataType::from_name("complex128").unwrap();
        const U8: DataType = DataType::U8;
        let pitched: &[i64] = &[4 * 256, 256, 3, 1]; // NHWC rows padded to 256 bytes
        let cases: Vec<(&str, Tensor, Tensor, ElementOp, &str)> = vec![
            (
                "NHWC -> NCHW u8 C=3",
                at(SRC, U8, &[2, 4, 8, 3], None, "NHWC"),
                at(DST, U8, &[2, 3, 4, 8], None, "NCHW"),
                ElementOp::Copy,
                "deinterleave small=3 vec=16",
            ),
            (
                "NCHW -> NHWC u8 C=3",
                at(SRC, U8, &[2, 3, 4, 8], None, "NCHW"),
                at(DST, U8, &[2, 4, 8, 3], None, "NHWC"),
                ElementOp::Copy,
                "interleave small=3 vec=16 ilp=1",
            ),
            (
                "NCHW -> NHWC f32 C=4: 16-byte loads from each plane, 64-byte runs staged",
                at(SRC, F32, &[2, 4, 4, 8], None, "NCHW"),
                at(DST, F32, &[2, 4, 8, 4], None, "NHWC"),
                ElementOp::Copy,
                "interleave small=4 vec=4 staged ilp=1",
            ),
            (
                "NCHW -> NHWC u8 C=8: 8-byte loads a plane, the 64-byte run stored through the warp",
                at(SRC, U8, &[2, 8, 4, 32], None, "NCHW"),
                at(DST, U8, &[2, 4, 32, 8], None, "NHWC"),
                ElementOp::Copy,
                "interleave small=8 vec=8 staged ilp=1",
            ),
            (
                "NCHW -> NHWC f32 C=8: 8-byte loads a plane, the 64-byte run stored through the warp",
                at(SRC, F32, &[2, 8, 4, 8], None, "NCHW"),
                at(DST, F32, &[2, 4, 8, 8], None, "NHWC"),
                ElementOp::Copy,
                "interleave small=8 vec=2 staged ilp=1",
            ),
            (
                "NHWC -> NCHW u8 C=8: 64-byte runs loaded through the warp, 8 bytes stored a row",
                at(SRC, U8, &[2, 4, 16, 8], None, "NHWC"),
                at(DST, U8, &[2, 8, 4, 16], None, "NCHW"),
                ElementOp::Copy,
                "deinterleave small=8 vec=8 staged",
            ),
            (
                "NCHW -> NHWC f32 C=3: 48-byte runs stay direct",
                at(SRC, F32, &[2, 3, 4, 8], None, "NCHW"),
                at(DST, F32, &[2, 4, 8, 3], None, "NHWC"),
                ElementOp::Copy,
                "interleave small=3 vec=4 ilp=1",
            ),
            (
                "NHWC -> NCHW u8 C=64: 16 KiB tiles, the 64 channels by 256 positions",
                at(SRC, U8, &[1, 16, 16, 64], None, "NHWC"),
                at(DST, U8, &[1, 64, 16, 16], None, "NCHW"),
                ElementOp::Copy,
                "transpose_tiled tile_r=64 tile_s=256",
            ),
            (
                "NHWC -> NCHW complex128 C=8: the tile, not one 16-byte item a row per thread",
                at(SRC, c128, &[1, 16, 16, 8], None, "NHWC"),
                at(DST, c128, &[1, 8, 16, 16], None, "NCHW"),
                ElementOp::Copy,
                "transpose_tiled tile_r=8 tile_s=128",
            ),
            (
                "NHWC -> NCHW complex128 C=3: 48-byte runs stay with the registers",
                at(SRC, c128, &[1, 16, 16, 3], None, "NHWC"),
                at(DST, c128, &[1, 3, 16, 16], None, "NCHW"),
                ElementOp::Copy,
                "deinterleave small=3 vec=1",
            ),
            (
                "NHWC -> NCHW f64 C=8: one 8-byte item a row, staged, stays with the registers",
                at(SRC, F64, &[1, 16, 16, 8], None, "NHWC"),
                at(DST, F64, &[1, 8, 16, 16], None, "NCHW"),
                ElementOp::Copy,
                "deinterleave small=8 vec=1 staged",
            ),
            (
                "NHWC -> NCHW f64 C=64: the 64 channels by 32 positions",
                at(SRC, F64, &[1, 16, 16, 64], None, "NHWC"),
                at(DST, F64, &[1, 64, 16, 16], None, "NCHW"),
                ElementOp::Copy,
                "transpose_tiled tile_r=64 tile_s=32",
            ),
            (
                "NCHW -> NHWC f64 C=64: 32 positions by the 64 channels",
                at(SRC, F64, &[1, 64, 16, 16], None, "NCHW"),
                at(DST, F64, &[1, 16, 16, 64], None, "NHWC"),
                ElementOp::Copy,
                "transpose_tiled tile_r=32 tile_s=64",
            ),
            (
                "the same with the destination 8 bytes off 16-byte alignment",
                at(SRC, U8, &[1, 16, 16, 64], None, "NHWC"),
                at(DST + 8, U8, &[1, 64, 16, 16], None, "NCHW"),
                ElementOp::Copy,
                "general rank=2",
            ),
            (
                "NHWC rows pitched to 256 bytes -> NCHW: batch (N, H), 8-byte rows of W",
                at(SRC, U8, &[2, 4, 8, 3], Some(pitched), "NHWC"),
                at(DST, U8, &[2, 3, 4, 8], None, "NCHW"),
                ElementOp::Copy,
                "deinterleave small=3 vec=8 ilp=2",
            ),
            (
                "same layout, packed",
                at(SRC, U8, &[2, 4, 8, 3], None, "NHWC"),
                at(DST, U8, &[2, 4, 8, 3], None, "NHWC"),
                ElementOp::Copy,
                "memcpy",
            ),
            (
                "u8 -> f32, same layout: 16-byte loads, 64-byte runs stored through the warp",
                at(SRC, U8, &[64, 64], None, ""),
                at(DST, F32, &[64, 64], None, ""),
                to(U8, F32),
                "elementwise vec=16 ilp=2 align_in=16 align_out=16 staged",
            ),
            (
                "u8 -> f32 with the destination 4 bytes off 16: direct 4-element chunks",
                at(SRC, U8, &[64, 64], None, ""),
                at(DST + 4, F32, &[64, 64], None, ""),
                to(U8, F32),
                "elementwise vec=4 ilp=8 align_in=4 align_out=4",
            ),
            (
                "u8 NHWC -> f32 NCHW (normalise): four floats per store",
                at(SRC, U8, &[2, 4, 8, 3], None, "NHWC"),
                at(DST, F32, &[2, 3, 4, 8], None, "NCHW"),
                to(U8, F32),
                "deinterleave small=3 vec=4",
            ),
            (
                "no elements",
                at(SRC, U8, &[0, 3], None, "HW"),
                at(DST, U8, &[0, 3], None, "HW"),
                ElementOp::Copy,
                "none",
            ),
        ];
        for (case, src, dst, op, expected) in cases {
            assert_eq!(name(&src, &dst, &op), expected, "{case}");
        }
    }

    /// Rows padded to a 256-byte pitch on either side (decoder and NVCV images) keep the
    /// register kernels, with the rows as a second batch dimension; vectors narrow to what the
    /// row strides' alignment allows. The shapes of bench/layout_matrix.py's pitched cases.
    #[test]
    fn pitched_rows_take_the_register_kernels() {
        const F32: DataType = DataType::F32;
        const U8: DataType = DataType::U8;
        // Packed strides but for dimension `h` (H: a row), whose stride is `pitch` bytes.
        fn padded(shape: &[i64], item: i64, h: usize, pitch: i64) -> Vec<i64> {
            let mut strides = vec![item; shape.len()];
            for d in (0..shape.len() - 1).rev() {
                strides[d] = if d == h { pitch } else { strides[d + 1] * shape[d + 1] };
            }
            strides
        }
        let (nhwc, nchw) = ([13, 1000, 1000, 3], [13, 3, 1000, 1000]);
        let nhwc4 = [13, 1000, 1000, 4];
        let cases: Vec<(&str, Tensor, Tensor, &str)> = vec![
            (
                "u8 NHWC (rows 3000 B at 3072) -> NCHW: 1000-byte destination rows, 8-byte runs",
                at(SRC, U8, &nhwc, Some(&padded(&nhwc, 1, 1, 3072)), "NHWC"),
                at(DST, U8, &nchw, None, "NCHW"),
                "deinterleave small=3 vec=8 ilp=2",
            ),
            (
                "u8 NHWC -> NCHW (rows 1000 B at 1024)",
                at(SRC, U8, &nhwc, None, "NHWC"),
                at(DST, U8, &nchw, Some(&padded(&nchw, 1, 2, 1024)), "NCHW"),
                "deinterleave small=3 vec=8 ilp=2",
            ),
            (
                "u8 NCHW (rows 1000 B at 1024) -> NHWC",
                at(SRC, U8, &nchw, Some(&padded(&nchw, 1, 2, 1024)), "NCHW"),
                at(DST, U8, &nhwc, None, "NHWC"),
                "interleave small=3 vec=8 ilp=2",
            ),
            (
                "u8 NCHW -> NHWC (rows 3000 B at 3072)",
                at(SRC, U8, &nchw, None, "NCHW"),
                at(DST, U8, &nhwc, Some(&padded(&nhwc, 1, 1, 3072)), "NHWC"),
                "interleave small=3 vec=8 ilp=2",
            ),
            (
                "u8 C=4 NHWC -> NCHW (rows 1000 B at 1024): 8-byte runs, no partial chunk a row",
                at(SRC, U8, &nhwc4, None, "NHWC"),
                at(
                    DST,
                    U8,
                    &[13, 4, 1000, 1000],
                    Some(&padded(&[13, 4, 1000, 1000], 1, 2, 1024)),
                    "NCHW",
                ),
                "deinterleave small=4 vec=8 ilp=2",
            ),
            (
                "f32 NHWC (rows 12000 B at 12032) -> NCHW",
                at(SRC, F32, &nhwc, Some(&padded(&nhwc, 4, 1, 12032)), "NHWC"),
                at(DST, F32, &nchw, None, "NCHW"),
                "deinterleave small=3 vec=4",
            ),
            (
                "f32 NCHW -> NHWC (rows 12000 B at 12032)",
                at(SRC, F32, &nchw, None, "NCHW"),
                at(DST, F32, &nhwc, Some(&padded(&nhwc, 4, 1, 12032)), "NHWC"),
                "interleave small=3 vec=4 ilp=1",
            ),
            (
                "u8 C=64 NHWC (rows 2048 B at 2304) -> NCHW: tiles of 64 channels by the 32 positions",
                at(SRC, U8, &[2, 32, 32, 64], Some(&[32 * 2304, 2304, 64, 1]), "NHWC"),
                at(DST, U8, &[2, 64, 32, 32], None, "NCHW"),
                "transpose_tiled tile_r=64 tile_s=32",
            ),
            (
                "30-byte destination rows, not 16-byte multiples: general",
                at(SRC, U8, &[2, 30, 30, 64], Some(&[30 * 2048, 2048, 64, 1]), "NHWC"),
                at(DST, U8, &[2, 64, 30, 30], None, "NCHW"),
                "general rank=4",
            ),
        ];
        for (case, src, dst, expected) in cases {
            assert_eq!(name(&src, &dst, &ElementOp::Copy), expected, "{case}");
        }
    }

    /// A source row pitch that is not a multiple of the element-aligned widths falls back to
    /// the general kernel, never to a misaligned vector access.
    #[test]
    fn pitches_too_odd_for_vectors_stay_general() {
        let src = at(SRC, DataType::U8, &[2, 4, 8, 3], Some(&[4 * 25, 25, 3, 1]), "NHWC");
        let dst = at(DST, DataType::U8, &[2, 3, 4, 8], None, "NCHW");
        assert_eq!(name(&src, &dst, &ElementOp::Copy), "general rank=4");
    }

    /// Same-layout conversions (contiguous, or collapsible to one run with the channel kept
    /// apart) take the element-wise kernel: 16 bytes a chunk on the narrower side, the head
    /// chosen so chunks are aligned on both sides, a lookup table for 1-byte inputs
    /// (to 1-byte outputs, and float8 decodes).
    #[test]
    fn same_layout_conversions_take_the_elementwise_kernel() {
        const F32: DataType = DataType::F32;
        const F16: DataType = DataType::F16;
        const BF16: DataType = DataType::BF16;
        const U8: DataType = DataType::U8;
        const F8_E4M3FN: DataType = DataType::F8_E4M3FN;
        const F8_E5M2: DataType = DataType::F8_E5M2;
        let flat = |data, dtype| at(data, dtype, &[1 << 20], None, "");
        let cases: Vec<(&str, Tensor, Tensor, &str)> = vec![
            (
                "f32 -> e4m3fn",
                flat(SRC, F32),
                flat(DST, F8_E4M3FN),
                "elementwise vec=16 ilp=1 align_in=16 align_out=16",
            ),
            (
                "u8 -> e4m3fn: a table",
                flat(SRC, U8),
                flat(DST, F8_E4M3FN),
                "elementwise vec=16 ilp=4 align_in=16 align_out=16 table=1 table_copies=32",
            ),
            (
                "e5m2 -> bf16: decoded by the hardware (no table), 32-byte runs stored through the warp",
                flat(SRC, F8_E5M2),
                flat(DST, BF16),
                "elementwise vec=16 ilp=2 align_in=16 align_out=16 staged",
            ),
            (
                "e4m3fn -> f32: 64-byte runs stored through the warp",
                flat(SRC, F8_E4M3FN),
                flat(DST, F32),
                "elementwise vec=16 ilp=2 align_in=16 align_out=16 staged",
            ),
            (
                "f16 -> f32: 32-byte runs stored through the warp",
                flat(SRC, F16),
                flat(DST, F32),
                "elementwise vec=8 ilp=2 align_in=16 align_out=16 staged",
            ),
            (
                "f32 -> e4m3fn, both one element off: a head of 15 realigns both sides",
                flat(SRC + 4, F32),
                flat(DST + 1, F8_E4M3FN),
                "elementwise vec=16 ilp=1 align_in=16 align_out=16",
            ),
            (
                "u8 -> u8 with offsets that never line up: byte accesses, still one pass",
                flat(SRC + 1, U8),
                flat(DST, U8),
                "elementwise vec=16 ilp=4 align_in=1 align_out=16 table=1 table_copies=32",
            ),
            (
                "u8 HWC -> f32 HWC: the channel kept apart still makes one run",
                at(SRC, U8, &[64, 64, 3], None, "HWC"),
                at(DST, F32, &[64, 64, 3], None, "HWC"),
                "elementwise vec=16 ilp=2 align_in=16 align_out=16 staged",
            ),
        ];
        for (case, src, dst, expected) in cases {
            let op = to(src.dtype(), dst.dtype());
            assert_eq!(name(&src, &dst, &op), expected, "{case}");
        }
        // The head: the first h for which both 4 + 4h and 1 + h are multiples of 16.
        let (src, dst) = (flat(SRC + 4, F32), flat(DST + 1, F8_E4M3FN));
        let op = to(F32, F8_E4M3FN);
        let plan = Plan::new(&src, &dst, None).unwrap();
        let Ok(Work::Launch { params: Params::Elementwise(p), .. }) =
            choose(&plan, &op, src.data(), dst.data())
        else {
            panic!("an element-wise launch")
        };
        assert_eq!((p.head, p.count, p.inner, p.channels), (15, 1 << 20, 1 << 20, 1));
    }

    /// Per-channel coefficients on a same-layout conversion: the kernel is told how many
    /// consecutive elements share a channel and how many channels there are.
    #[test]
    fn elementwise_channels_follow_the_layout() {
        let src = at(SRC, DataType::U8, &[3, 8, 5], None, "CHW");
        let dst = at(DST, DataType::F32, &[3, 8, 5], None, "CHW");
        let conversion =
            Conversion::new(DataType::U8, DataType::F32, vec![1.0; 3], vec![0.0; 3], Some(3))
                .unwrap();
        let plan = Plan::new(&src, &dst, Some(0)).unwrap();
        assert_eq!(plan.shape(), Shape::Dense);
        let op = ElementOp::Convert(conversion);
        let Ok(Work::Launch { params: Params::Elementwise(p), .. }) =
            choose(&plan, &op, src.data(), dst.data())
        else {
            panic!("an element-wise launch")
        };
        assert_eq!((p.inner, p.channels), (40, 3));
    }

    /// The name lists every define that specialises the kernel except the element types, so two
    /// launches of different programs never share a name.
    #[test]
    fn names_leave_out_only_the_element_types() {
        let src = at(SRC, DataType::U16, &[2, 4, 8, 3], None, "NHWC");
        let dst = at(DST, DataType::U16, &[2, 3, 4, 8], None, "NCHW");
        let view = src.permute_to_layout(&dst.layout()).unwrap();
        let plan = Plan::new(&view, &dst, None).unwrap();
        let work = choose(&plan, &ElementOp::Copy, view.data(), dst.data()).unwrap();
        let Work::Launch { spec, .. } = &work else { panic!("a launch") };
        let valued = spec.defines.iter().filter(|d| d.contains('=')).count();
        assert_eq!(work.name().split(' ').count(), 1 + valued - 3, "{:?}", spec.defines);
        assert_eq!(work.name(), "deinterleave small=3 vec=8");
    }

    /// Compiles every layout-kernel specialisation for the H100/H200 architecture (sm_90) with
    /// NVRTC, which needs no GPU (see `compile_all_for_sm_90`).
    #[test]
    fn every_kernel_specialisation_compiles_for_sm_90() {
        crate::cuda::kernel::compile_all_for_sm_90(&super::specialisations());
    }
}
