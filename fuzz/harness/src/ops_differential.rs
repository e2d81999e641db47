//! (f) Differential target: small host tensors — random shapes, label permutations, strided and
//! negative-stride views made with `tb_tensor_slice`/`tb_tensor_transpose` — through
//! `tb_reformat`, `tb_copy` and `tb_convert`, compared element by element with a direct
//! reference written here. Bytes of the destination's buffer outside its elements must be left
//! alone; a read-only destination must be refused without a write.

use crate::abi::*;
use crate::input::Input;
use crate::{Buffer, LiveBaseline, c_string};

const LABELS: &[u8] = b"NCHWD";

struct Owned {
    buffer: Buffer,
    len: usize,
    handle: *mut TbTensor,
}

/// Wraps a fresh C-contiguous buffer of `shape`, filled by `fill(byte index)`.
fn wrap(shape: &[i64], dtype: TbDataType, layout: Option<&[u8]>, readonly: bool, fill: impl Fn(usize) -> u8) -> Owned {
    let item = usize::from(dtype.bits / 8);
    let len = shape.iter().product::<i64>() as usize * item;
    let mut buffer = Buffer::new(len);
    let base = buffer.base();
    for k in 0..len {
        // SAFETY: `len` bytes from `base` are inside the buffer.
        unsafe { *base.add(k) = fill(k) };
    }
    let text = layout.map(c_string);
    let mut handle = std::ptr::null_mut();
    // SAFETY: `shape.len()` entries; a buffer of the described size; valid out pointer.
    let status = unsafe {
        tb_tensor_wrap(
            base.cast(),
            TbDevice { device_type: TB_DEVICE_CPU, device_id: 0 },
            dtype,
            shape.len() as i32,
            shape.as_ptr(),
            std::ptr::null(),
            text.as_ref().map_or(std::ptr::null(), |t| t.as_ptr().cast()),
            readonly,
            None,
            std::ptr::null_mut(),
            &mut handle,
        )
    };
    assert_eq!(status, TB_SUCCESS, "wrap of a packed host buffer {shape:?}: {}", last_error());
    Owned { buffer, len, handle }
}

/// Replaces `*t` by a view made by `make`, releasing the old handle.
fn replace(t: &mut *mut TbTensor, make: impl FnOnce(*mut TbTensor, &mut *mut TbTensor) -> Status) {
    let mut view = std::ptr::null_mut();
    let status = no_internal(make(*t, &mut view), "view");
    assert_eq!(status, TB_SUCCESS, "a view of a valid tensor: {}", last_error());
    release(*t);
    *t = view;
}

/// A strided view of every dimension: step ±k over a base k times longer.
fn strided_over(base: &mut *mut TbTensor, steps: &[(i64, bool)]) {
    for (dim, &(k, reversed)) in steps.iter().enumerate() {
        let (start, stop, step) = if reversed { (-1, i64::MIN, -k) } else { (0, i64::MAX, k) };
        // SAFETY: live handle, valid out pointer.
        replace(base, |t, out| unsafe { tb_tensor_slice(t, dim as i32, start, stop, step, out) });
    }
}

fn element_ptr(info: &TbTensorInfo, index: &[i64]) -> *const u8 {
    let mut p = info.data as *const u8;
    for (i, &x) in index.iter().enumerate() {
        p = p.wrapping_offset((x * info.strides[i]) as isize);
    }
    p
}

/// Calls `f` with every multi-index of `shape`, row-major.
fn for_each_index(shape: &[i64], mut f: impl FnMut(&[i64])) {
    if shape.contains(&0) {
        return;
    }
    let mut index = vec![0i64; shape.len()];
    loop {
        f(&index);
        let mut d = shape.len();
        loop {
            if d == 0 {
                return;
            }
            d -= 1;
            index[d] += 1;
            if index[d] < shape[d] {
                break;
            }
            index[d] = 0;
        }
    }
}

fn labels(info: &TbTensorInfo) -> Vec<u8> {
    info.layout.labels.iter().copied().take_while(|&b| b != 0).collect()
}

/// The source index of destination index `j`: by labels when both have a layout, else as is.
fn source_index(src: &TbTensorInfo, dst: &TbTensorInfo, j: &[i64]) -> Vec<i64> {
    let (ls, ld) = (labels(src), labels(dst));
    if ls.is_empty() {
        return j.to_vec();
    }
    ls.iter().map(|l| j[ld.iter().position(|x| x == l).expect("same labels")]).collect()
}

#[derive(Clone, Copy)]
enum Op {
    Reformat,
    Copy,
    Convert { out_u8: bool },
}

fn read_f32(p: *const u8, dtype: TbDataType) -> f32 {
    // SAFETY: `p` points at an element of a tensor over memory the target owns.
    unsafe {
        match (dtype.code, dtype.bits) {
            (1, 8) => f32::from(*p),
            (0, 8) => f32::from(*p as i8),
            (1, 16) => f32::from(p.cast::<u16>().read_unaligned()),
            (0, 16) => f32::from(p.cast::<i16>().read_unaligned()),
            (2, 32) => p.cast::<f32>().read_unaligned(),
            _ => unreachable!("not a convert source"),
        }
    }
}

pub fn run(data: &[u8]) {
    let _live = LiveBaseline::take();
    let mut input = Input::new(data);
    let op = match input.below(4) {
        0 | 1 => Op::Reformat,
        2 => Op::Copy,
        _ => Op::Convert { out_u8: input.bool() },
    };
    let (code, bits) = match op {
        Op::Convert { .. } => input.pick(&[(1u8, 8u8), (0, 8), (1, 16), (0, 16), (2, 32)]),
        _ => input.pick(&[(1u8, 8u8), (0, 16), (2, 32), (2, 64), (5, 128), (4, 16)]),
    };
    let src_dtype = TbDataType { code, bits, lanes: 1 };
    let rank = input.below(5);
    let with_layout = matches!(op, Op::Convert { .. }) || input.below(4) != 0;
    let mut letters = LABELS.to_vec();
    for i in (1..letters.len()).rev() {
        letters.swap(i, input.below(i + 1));
    }
    letters.truncate(rank);
    let base_shape: Vec<i64> = (0..rank).map(|_| input.pick(&[1, 2, 3, 4, 5, 2, 3, 0])).collect();
    let seed = input.u8();

    // The source: a packed base, then slices and transposes.
    let src_owned = wrap(&base_shape, src_dtype, with_layout.then_some(&letters[..]), input.bool(), |k| {
        (k as u8).wrapping_mul(167).wrapping_add(seed)
    });
    let mut src = src_owned.handle;
    // SAFETY: the source's handle is owned here and released by `replace`.
    unsafe { tb_tensor_retain(src) };
    for _ in 0..input.below(4) {
        let r = info(src).rank;
        if r == 0 {
            break;
        }
        if input.bool() {
            let dim = input.below(r as usize) as i32;
            let start = i64::from(input.u8() as i8 % 6);
            let stop = if input.bool() { i64::MAX } else { i64::from(input.u8() as i8 % 6) };
            let step = input.pick(&[1, 2, -1, -2, 3, -3]);
            // SAFETY: live handle, valid out pointer.
            replace(&mut src, |t, out| unsafe { tb_tensor_slice(t, dim, start, stop, step, out) });
        } else {
            let mut axes: Vec<i32> = (0..r).collect();
            for i in (1..axes.len()).rev() {
                axes.swap(i, input.below(i + 1));
            }
            // SAFETY: `r` axes.
            replace(&mut src, |t, out| unsafe { tb_tensor_transpose(t, r, axes.as_ptr(), out) });
        }
    }
    let src_info = info(src);
    let src_labels = labels(&src_info);
    let r = src_info.rank as usize;

    // The destination: labels permuted (reformat, convert) or the same (copy), over a buffer
    // k times longer in each dimension, viewed with step ±k.
    let mut dst_labels = src_labels.clone();
    if !matches!(op, Op::Copy) {
        for i in (1..dst_labels.len()).rev() {
            dst_labels.swap(i, input.below(i + 1));
        }
    }
    let dst_shape: Vec<i64> = if src_labels.is_empty() {
        src_info.shape[..r].to_vec()
    } else {
        dst_labels.iter().map(|l| src_info.shape[src_labels.iter().position(|x| x == l).unwrap()]).collect()
    };
    let steps: Vec<(i64, bool)> = (0..r).map(|_| (input.pick(&[1, 1, 2, 3]), input.below(3) == 0)).collect();
    let dst_base_shape: Vec<i64> = dst_shape.iter().zip(&steps).map(|(&e, &(k, _))| e * k).collect();
    let dst_dtype = match op {
        Op::Convert { out_u8: true } => TbDataType { code: 1, bits: 8, lanes: 1 },
        Op::Convert { out_u8: false } => TbDataType { code: 2, bits: 32, lanes: 1 },
        _ => src_dtype,
    };
    let dst_readonly = input.below(16) == 0;
    let mut dst_owned = wrap(&dst_base_shape, dst_dtype, with_layout.then_some(&dst_labels[..]), dst_readonly, |_| 0xCD);
    let mut dst = dst_owned.handle;
    // SAFETY: as for the source.
    unsafe { tb_tensor_retain(dst) };
    strided_over(&mut dst, &steps);
    let dst_info = info(dst);
    assert_eq!(dst_info.shape[..r], dst_shape[..]);

    // Affine coefficients for convert: none, one, or one per channel of dst's 'C'.
    let channels = dst_labels.iter().position(|&l| l == b'C').map(|c| dst_shape[c]);
    let count = match (input.below(3), channels) {
        (0, _) => 0,
        (1, _) => 1,
        (_, Some(c)) if c > 0 => c as usize,
        _ => 1,
    };
    let scale: Vec<f32> = (0..count).map(|_| f32::from(input.u8() as i8) / 16.0).collect();
    let offset: Vec<f32> = (0..count).map(|_| f32::from(input.u8() as i8) / 4.0).collect();

    // SAFETY: live handles; `count` coefficients; host tensors need no stream.
    let status = no_internal(
        unsafe {
            match op {
                Op::Reformat => tb_reformat(src, dst, std::ptr::null_mut()),
                Op::Copy => tb_copy(src, dst, std::ptr::null_mut()),
                Op::Convert { .. } => tb_convert(
                    src,
                    dst,
                    if count == 0 { std::ptr::null() } else { scale.as_ptr() },
                    if count == 0 { std::ptr::null() } else { offset.as_ptr() },
                    count as i32,
                    std::ptr::null_mut(),
                ),
            }
        },
        "operation",
    );

    // Expected contents of the destination buffer: sentinels, then the reference's elements.
    let dst_base = dst_owned.buffer.base();
    let mut expected = vec![0xCDu8; dst_owned.len];
    if dst_readonly {
        assert_eq!(status, TB_ERROR_READ_ONLY, "a read-only destination: {}", last_error());
    } else {
        assert_eq!(status, TB_SUCCESS, "host operation on valid operands: {}", last_error());
        let out_item = usize::from(dst_dtype.bits / 8);
        let c_dim = dst_labels.iter().position(|&l| l == b'C');
        for_each_index(&dst_shape, |j| {
            let at = element_ptr(&dst_info, j) as usize - dst_base as usize;
            let s = element_ptr(&src_info, &source_index(&src_info, &dst_info, j));
            let bytes: Vec<u8> = match op {
                Op::Reformat | Op::Copy => {
                    // SAFETY: an element of the source, inside its buffer.
                    unsafe { std::slice::from_raw_parts(s, out_item) }.to_vec()
                }
                Op::Convert { out_u8 } => {
                    let c = if count > 1 { j[c_dim.unwrap()] as usize } else { 0 };
                    let (a, b) = if count == 0 { (1.0, 0.0) } else { (scale[c], offset[c]) };
                    let y = read_f32(s, src_dtype).mul_add(a, b);
                    if out_u8 {
                        let v = if y.is_nan() { 0.0 } else { y.round_ties_even().clamp(0.0, 255.0) };
                        vec![v as u8]
                    } else if y.is_nan() {
                        // Any NaN will do: keep the bytes there when they are one.
                        // SAFETY: an element of the destination, inside its buffer.
                        let got = unsafe { dst_base.add(at).cast::<f32>().read_unaligned() };
                        if got.is_nan() { got.to_ne_bytes().to_vec() } else { y.to_ne_bytes().to_vec() }
                    } else {
                        y.to_ne_bytes().to_vec()
                    }
                }
            };
            expected[at..at + out_item].copy_from_slice(&bytes);
        });
    }
    // SAFETY: the buffer holds `len` initialised bytes.
    let actual = unsafe { std::slice::from_raw_parts(dst_base, dst_owned.len) };
    if actual != &expected[..] {
        let first = actual.iter().zip(&expected).position(|(a, b)| a != b).unwrap();
        panic!(
            "destination differs from the reference at byte {first} of {}: got {:02x?}, want {:02x?}\n\
             src shape {:?} strides {:?} layout {:?}; dst shape {:?} strides {:?} layout {:?}",
            dst_owned.len,
            &actual[first..(first + 8).min(actual.len())],
            &expected[first..(first + 8).min(expected.len())],
            &src_info.shape[..r],
            &src_info.strides[..r],
            String::from_utf8_lossy(&src_labels),
            &dst_shape,
            &dst_info.strides[..r],
            String::from_utf8_lossy(&dst_labels),
        );
    }
    release(src);
    release(dst);
    release(src_owned.handle);
    release(dst_owned.handle);
}
