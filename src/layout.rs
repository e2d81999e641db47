//! Layouts: one label letter per dimension (`"NHWC"`), as CV-CUDA's NVCV and PyTorch's named
//! dimensions use them. A layout is a value type, at most `TB_MAX_RANK` labels, none repeated.

use crate::error::{Error, Result};
use std::os::raw::c_char;

/// The largest rank a tensor or layout can have (as NVCV's `NVCV_TENSOR_MAX_RANK`).
pub const TB_MAX_RANK: usize = 15;

/// Capacity of `TbLayout::labels`: `TB_MAX_RANK` labels plus the terminating NUL.
pub const TB_LAYOUT_CAPACITY: usize = 16;

/// A layout: the dimension labels as a NUL-terminated ASCII string (`"NHWC"`), outermost first.
/// Labels are ASCII letters, case-sensitive, none repeated. An all-NUL value is the empty layout
/// ("no layout"), which is what tensors wrapped without a layout report.
#[repr(C)]
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TbLayout {
    /// The labels, outermost dimension first, NUL-terminated; unused bytes are NUL.
    pub labels: [c_char; TB_LAYOUT_CAPACITY],
}

/// The layout type of the safe core.
pub type Layout = TbLayout;

/// The well-known layouts; the header spells each as a `TB_LAYOUT_*` macro (`TB_LAYOUT_NHWC`).
#[cfg(test)]
const WELL_KNOWN: [&str; 11] =
    ["HWC", "CHW", "NHWC", "NCHW", "NCDHW", "NDHWC", "NFCHW", "NFHWC", "HW", "NW", "NC"];

impl TbLayout {
    /// The empty layout ("no layout").
    pub const NONE: TbLayout = TbLayout { labels: [0; TB_LAYOUT_CAPACITY] };

    /// Parses labels such as `"NHWC"`; the empty string gives `TbLayout::NONE`.
    pub fn parse(text: &str) -> Result<Self> {
        let bytes = text.as_bytes();
        if bytes.len() > TB_MAX_RANK {
            return Err(Error::invalid_argument(format!(
                "layout \"{text}\" has {} labels; at most {TB_MAX_RANK} are allowed",
                bytes.len()
            )));
        }
        let mut layout = Self::NONE;
        for (i, &b) in bytes.iter().enumerate() {
            if !b.is_ascii_alphabetic() {
                return Err(Error::invalid_argument(format!(
                    "layout \"{}\": label {:?} at position {i} is not an ASCII letter",
                    text.escape_default(),
                    char::from(b)
                )));
            }
            if bytes[..i].contains(&b) {
                return Err(Error::invalid_argument(format!(
                    "layout \"{text}\": label '{}' is repeated",
                    char::from(b)
                )));
            }
            layout.labels[i] = b as c_char;
        }
        Ok(layout)
    }

    /// Number of labels (0 for the empty layout).
    pub fn rank(&self) -> usize {
        self.labels.iter().position(|&c| c == 0).unwrap_or(TB_LAYOUT_CAPACITY)
    }

    /// Whether this is the empty layout.
    pub fn is_none(&self) -> bool {
        self.rank() == 0
    }

    /// The labels as bytes, outermost first.
    pub fn as_bytes(&self) -> Vec<u8> {
        self.labels[..self.rank()].iter().map(|&c| c as u8).collect()
    }

    /// The labels as a string (`"NHWC"`, or `""` for none).
    pub fn as_string(&self) -> String {
        String::from_utf8_lossy(&self.as_bytes()).into_owned()
    }

    /// The position of `label`, if present.
    pub fn find(&self, label: u8) -> Option<usize> {
        self.as_bytes().iter().position(|&b| b == label)
    }

    /// Checks that this layout can describe a tensor of `rank` dimensions (none always can).
    pub fn check_rank(&self, rank: usize) -> Result<()> {
        if self.is_none() || self.rank() == rank {
            return Ok(());
        }
        Err(Error::invalid_argument(format!(
            "layout \"{}\" has {} labels but the tensor has rank {rank}",
            self.as_string(),
            self.rank()
        )))
    }

    /// The axis order that turns a tensor in `self` into one in `target`: `target[i]` is source
    /// dimension `order[i]`. Both layouts must hold the same labels.
    pub fn permutation_to(&self, target: &TbLayout) -> Result<Vec<usize>> {
        let (from, to) = (self.as_string(), target.as_string());
        if self.is_none() {
            return Err(Error::invalid_argument(format!(
                "cannot permute to layout \"{to}\": the tensor has no layout"
            )));
        }
        if from.len() != to.len() {
            return Err(Error::invalid_argument(format!(
                "layout \"{to}\" is not a permutation of \"{from}\" (different rank)"
            )));
        }
        to.bytes()
            .map(|label| {
                self.find(label).ok_or_else(|| {
                    Error::invalid_argument(format!(
                        "layout \"{to}\" is not a permutation of \"{from}\": label '{}' is missing",
                        char::from(label)
                    ))
                })
            })
            .collect()
    }

    /// This layout with the labels reordered by `order` (as returned by `Self::permutation_to`).
    pub fn permuted(&self, order: &[usize]) -> TbLayout {
        if self.is_none() {
            return Self::NONE;
        }
        let bytes = self.as_bytes();
        let mut out = Self::NONE;
        for (i, &src) in order.iter().enumerate() {
            out.labels[i] = bytes[src] as c_char;
        }
        out
    }

    /// This layout without the label at `dim` (the layout of a selected sub-tensor).
    pub fn without(&self, dim: usize) -> TbLayout {
        if self.is_none() {
            return Self::NONE;
        }
        let mut bytes = self.as_bytes();
        bytes.remove(dim);
        let mut out = Self::NONE;
        for (i, b) in bytes.into_iter().enumerate() {
            out.labels[i] = b as c_char;
        }
        out
    }
}

impl std::fmt::Debug for TbLayout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TbLayout(\"{}\")", self.as_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_well_known_layouts() {
        for text in WELL_KNOWN {
            let layout = TbLayout::parse(text).unwrap();
            assert_eq!(layout.as_string(), text);
            assert_eq!(layout.rank(), text.len());
        }
        assert!(TbLayout::parse("").unwrap().is_none());
        assert_eq!(TbLayout::parse("ABCDEFGHIJKLMNO").unwrap().rank(), 15);
    }

    #[test]
    fn the_header_defines_every_well_known_layout() {
        let header = include_str!("../include/tensorbridge.h");
        for text in WELL_KNOWN {
            assert!(header.contains(&format!("#define TB_LAYOUT_{text} \"{text}\"")), "{text}");
        }
    }

    #[test]
    fn rejects_bad_labels() {
        for (text, fragment) in [
            ("NHWCN", "'N' is repeated"),
            ("ABCDEFGHIJKLMNOP", "at most 15"),
            ("N1WC", "not an ASCII letter"),
            ("NH C", "not an ASCII letter"),
        ] {
            let err = TbLayout::parse(text).unwrap_err();
            assert!(err.message.contains(fragment), "{text}: {}", err.message);
        }
    }

    #[test]
    fn finds_labels_and_permutes() {
        let nhwc = TbLayout::parse("NHWC").unwrap();
        let nchw = TbLayout::parse("NCHW").unwrap();
        assert_eq!(nhwc.find(b'C'), Some(3));
        assert_eq!(nhwc.find(b'D'), None);
        let order = nhwc.permutation_to(&nchw).unwrap();
        assert_eq!(order, vec![0, 3, 1, 2]);
        assert_eq!(nhwc.permuted(&order), nchw);
        assert_eq!(nhwc.without(0).as_string(), "HWC");
        let err = nhwc.permutation_to(&TbLayout::parse("NCHD").unwrap()).unwrap_err();
        assert!(err.message.contains("'D' is missing"));
    }

    #[test]
    fn rank_check_names_both_sides() {
        let err = TbLayout::parse("HWC").unwrap().check_rank(4).unwrap_err();
        assert!(err.message.contains("\"HWC\" has 3 labels but the tensor has rank 4"));
        TbLayout::NONE.check_rank(7).unwrap();
    }
}
