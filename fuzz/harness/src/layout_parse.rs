//! (a) Layout strings through `tb_layout_parse`, against a reference of the rule (ASCII letters,
//! at most 15, none repeated), then `tb_layout_rank`/`tb_layout_find` on the result and on raw,
//! possibly unterminated `TbLayout` bytes.

use crate::abi::*;
use crate::{LiveBaseline, c_string};

fn reference_accepts(text: &[u8]) -> bool {
    text.len() <= TB_MAX_RANK
        && text.iter().all(u8::is_ascii_alphabetic)
        && text.iter().enumerate().all(|(i, b)| !text[..i].contains(b))
}

pub fn run(data: &[u8]) {
    let _live = LiveBaseline::take();
    let text = c_string(data);
    let body = &text[..text.len() - 1];
    let mut layout = TbLayout { labels: [0xAA; 16] };
    // SAFETY: `text` is NUL-terminated; `layout` is a valid out pointer.
    let status = no_internal(unsafe { tb_layout_parse(text.as_ptr().cast(), &mut layout) }, "parse");
    if reference_accepts(body) {
        assert_eq!(status, TB_SUCCESS, "{body:?} is a valid layout: {}", last_error());
        let mut expected = [0u8; 16];
        expected[..body.len()].copy_from_slice(body);
        assert_eq!(layout.labels, expected, "labels of {body:?}");
        let mut rank = -1;
        // SAFETY: valid pointers.
        assert_eq!(unsafe { tb_layout_rank(&layout, &mut rank) }, TB_SUCCESS);
        assert_eq!(rank as usize, body.len());
        for probe in 0..=255u8 {
            let mut index = -2;
            // SAFETY: valid pointers.
            let s = no_internal(unsafe { tb_layout_find(&layout, probe as _, &mut index) }, "find");
            assert_eq!(s, TB_SUCCESS);
            let want = body.iter().position(|&b| b == probe && b != 0).map_or(-1, |i| i as i32);
            assert_eq!(index, want, "find {probe} in {body:?}");
        }
    } else {
        assert_ne!(status, TB_SUCCESS, "{body:?} is not a valid layout but was accepted");
        assert_eq!(status, TB_ERROR_INVALID_ARGUMENT);
        assert_eq!(layout.labels, [0xAA; 16], "out must be unchanged on failure");
    }

    // The same bytes as a raw struct, which may lack a terminating NUL: never read past 16 bytes.
    let mut raw = TbLayout::default();
    let n = data.len().min(16);
    raw.labels[..n].copy_from_slice(&data[..n]);
    let mut rank = -1;
    // SAFETY: valid pointers; the struct is 16 bytes whatever its contents.
    let status = no_internal(unsafe { tb_layout_rank(&raw, &mut rank) }, "rank of raw bytes");
    if status == TB_SUCCESS {
        let prefix_len = raw.labels.iter().position(|&b| b == 0).expect("accepted without a NUL");
        assert_eq!(rank as usize, prefix_len);
        assert!(reference_accepts(&raw.labels[..prefix_len]));
    }
}
