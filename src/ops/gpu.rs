//! Running a plan on a GPU: a driver memcpy for contiguous copies, the interleave /
//! deinterleave / tiled transpose kernels for batched transposes whose alignment allows 16-byte
//! accesses, and the general kernel for everything else.

use super::element::{Conversion, ElementOp, TB_MAX_CHANNELS};
use super::plan::{Dim, Plan, Shape};
use crate::cuda::kernel::{KernelSpec, launch, load};
use crate::cuda::memory::copy_bytes;
use crate::dtype::DataType;
use crate::error::{Error, Result};
use crate::stream::Stream;

/// Mirrors `Affine` in layout.cu.
#[repr(C)]
#[derive(Clone, Copy)]
pub(super) struct Affine {
    scale: [f32; TB_MAX_CHANNELS],
    offset: [f32; TB_MAX_CHANNELS],
    channels: i32,
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
    channel_is_r: i32,
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
const NO_AFFINE: Affine =
    Affine { scale: [1.0; TB_MAX_CHANNELS], offset: [0.0; TB_MAX_CHANNELS], channels: 1 };

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
        ElementOp::Convert(c) => types(type_name(c.from), type_name(c.to), true),
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
            let interleave = with(with(small_defines, "TB_INTERLEAVE".into()), "TB_ILP=2".into());
            all.push(spec("tb_interleave", interleave));
        }
        all.push(spec(
            "tb_transpose_tiled",
            with(raw.clone(), format!("TB_TILE={}", tile_for(size))),
        ));
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
        }
    }
    all
}

/// Tile edge of the tiled transpose for an element size: 64 × 64 bytes-or-more tiles.
fn tile_for(item_size: i64) -> i64 {
    match item_size {
        1 | 2 => 64,
        4 | 8 => 32,
        _ => 16,
    }
}

/// Tile extents (along r, along s): four times longer along whichever dimension has room, so
/// every thread keeps several 16-byte loads in flight; square when neither has.
fn tile_shape(item_size: i64, r_extent: i64, s_extent: i64) -> (i64, i64) {
    let tile = tile_for(item_size);
    if s_extent >= 4 * tile {
        (tile, 4 * tile)
    } else if r_extent >= 4 * tile {
        (4 * tile, tile)
    } else {
        (tile, tile)
    }
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
    /// `"interleave small=3 vec=4 ilp=2"`, `"transpose_tiled tile_r=64 tile_s=256"`,
    /// `"general rank=4"`, or `"none"` when there is nothing to move.
    pub(crate) fn name(&self) -> String {
        match self {
            Work::Nothing => "none".into(),
            Work::Memcpy { .. } => "memcpy".into(),
            Work::Launch { spec, .. } => {
                let mut name = spec.entry.trim_start_matches("tb_").to_string();
                for define in &spec.defines {
                    let Some((key, value)) = define.split_once('=') else { continue };
                    if !matches!(key, "TB_TIN" | "TB_TOUT" | "TB_AFFINE") {
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
        Shape::Transpose => transpose(plan, op, src, dst),
        _ => general(plan, op, src, dst),
    }
}

/// Runs `plan` with `op` on the GPU, asynchronously on `target.stream`.
pub(crate) fn run(plan: &Plan, op: &ElementOp, target: &Target) -> Result<()> {
    let (ordinal, stream) = (target.ordinal, target.stream);
    match choose(plan, op, target.src, target.dst)? {
        Work::Nothing => Ok(()),
        Work::Memcpy { bytes } => copy_bytes(ordinal, target.dst, target.src, bytes, stream),
        Work::Launch { spec, blocks, params } => {
            let function = load(ordinal, &spec)?;
            let blocks = blocks as u64;
            match &params {
                Params::Transpose(p) => launch(ordinal, function, blocks, THREADS, stream, p),
                Params::General(p) => launch(ordinal, function, blocks, THREADS, stream, p),
            }
        }
    }
}

fn transpose(plan: &Plan, op: &ElementOp, src_address: u64, dst_address: u64) -> Result<Work> {
    let (batch, r, s) = plan.transpose_dims();
    let n = plan.dims.len();
    let channel_is_r = match plan.channel {
        None => -1,
        Some(c) if c == n - 2 => 1,
        Some(c) if c == n - 1 => 0,
        Some(_) => return general(plan, op, src_address, dst_address),
    };
    let (e_in, e_out) = (plan.src_item, plan.dst_item);
    let params = TransposeParams {
        src: src_address,
        dst: dst_address,
        batch: batch.extent,
        r_extent: r.extent,
        s_extent: s.extent,
        src_b: batch.src,
        src_s: s.src,
        dst_b: batch.dst,
        dst_r: r.dst,
        channel_is_r,
        affine: affine_of(op),
    };
    let (src, dst) = (src_address as i64, dst_address as i64);
    let mut defines = type_defines(plan, op);
    let widest = e_in.max(e_out);
    let launch = |entry, defines, blocks, params| {
        Ok(Work::Launch {
            spec: KernelSpec { entry, defines },
            blocks,
            params: Params::Transpose(params),
        })
    };
    // Deinterleave: each thread stores one 16-byte run per destination row.
    let vector = (16 / e_out).max(1);
    if r.extent <= SMALL_MAX
        && s.src == r.extent * e_in
        && all_multiple_of(&[src, batch.src], unit_of(vector * r.extent * e_in))
        && all_multiple_of(&[dst, batch.dst, r.dst], unit_of(vector * e_out))
    {
        defines.extend([
            format!("TB_SMALL={}", r.extent),
            format!("TB_VEC={vector}"),
            "TB_DEINTERLEAVE".into(),
        ]);
        let chunks = batch.extent * ceil_div(s.extent, vector);
        let blocks = ceil_div(chunks, THREADS as i64);
        return launch("tb_deinterleave", defines, blocks, params);
    }
    // Interleave: each thread stores V·S elements, one 16-byte access where 16 is a multiple of
    // S·item (else runs of 16 elements of the widest type).
    let vector =
        if 16 % (s.extent * e_out) == 0 { 16 / (s.extent * e_out) } else { (16 / widest).max(1) };
    if s.extent <= SMALL_MAX
        && r.dst == s.extent * e_out
        && all_multiple_of(&[src, batch.src, s.src], unit_of(vector * e_in))
        && all_multiple_of(&[dst, batch.dst], unit_of(vector * s.extent * e_out))
    {
        // Loads narrower than 16 bytes per plane leave too little in flight: two chunks a thread
        // (an earlier, unscripted H100 comparison favoured it; bench/layout_bench.cpp measures the
        // current choice).
        let ilp = if vector * e_in < 16 { 2 } else { 1 };
        defines.extend([
            format!("TB_SMALL={}", s.extent),
            format!("TB_VEC={vector}"),
            format!("TB_ILP={ilp}"),
            "TB_INTERLEAVE".into(),
        ]);
        let chunks = batch.extent * ceil_div(r.extent, vector);
        let blocks = ceil_div(chunks, THREADS as i64 * ilp);
        return launch("tb_interleave", defines, blocks, params);
    }
    if *op == ElementOp::Copy
        && all_multiple_of(&[src, dst, batch.src, batch.dst, s.src, r.dst], 16)
    {
        let (tile_r, tile_s) = tile_shape(e_in, r.extent, s.extent);
        defines.extend([format!("TB_TILE_R={tile_r}"), format!("TB_TILE_S={tile_s}")]);
        let tiles = batch.extent * ceil_div(r.extent, tile_r) * ceil_div(s.extent, tile_s);
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

    /// The kernel a plan gets, by name, for the layout cases the benchmarks time: each row pins
    /// one decision of `choose` (which family, which vector width, tile and ILP).
    #[test]
    fn each_layout_case_names_the_kernel_it_launches() {
        const F32: DataType = DataType::F32;
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
                "NCHW -> NHWC f32 C=4: one pixel per 16-byte store, two chunks a thread",
                at(SRC, F32, &[2, 4, 4, 8], None, "NCHW"),
                at(DST, F32, &[2, 4, 8, 4], None, "NHWC"),
                ElementOp::Copy,
                "interleave small=4 vec=1 ilp=2",
            ),
            (
                "NHWC -> NCHW u8 C=64: tiles four times longer along HW",
                at(SRC, U8, &[1, 16, 16, 64], None, "NHWC"),
                at(DST, U8, &[1, 64, 16, 16], None, "NCHW"),
                ElementOp::Copy,
                "transpose_tiled tile_r=64 tile_s=256",
            ),
            (
                "the same with the destination 8 bytes off 16-byte alignment",
                at(SRC, U8, &[1, 16, 16, 64], None, "NHWC"),
                at(DST + 8, U8, &[1, 64, 16, 16], None, "NCHW"),
                ElementOp::Copy,
                "general rank=2",
            ),
            (
                "NHWC rows pitched to 256 bytes -> NCHW: rows do not merge",
                at(SRC, U8, &[2, 4, 8, 3], Some(pitched), "NHWC"),
                at(DST, U8, &[2, 3, 4, 8], None, "NCHW"),
                ElementOp::Copy,
                "general rank=4",
            ),
            (
                "same layout, packed",
                at(SRC, U8, &[2, 4, 8, 3], None, "NHWC"),
                at(DST, U8, &[2, 4, 8, 3], None, "NHWC"),
                ElementOp::Copy,
                "memcpy",
            ),
            (
                "u8 -> f32, same layout",
                at(SRC, U8, &[64, 64], None, ""),
                at(DST, F32, &[64, 64], None, ""),
                to(U8, F32),
                "general rank=1",
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
