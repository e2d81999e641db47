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
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TbLayout {
    /// The labels, outermost dimension first, NUL-terminated; unused bytes are NUL.
    pub labels: [c_char; TB_LAYOUT_CAPACITY],
}

/// A layout in the safe core: validated labels (ASCII letters, none repeated, at most
/// `TB_MAX_RANK`), NUL-padded. `from_raw` checks a C value; `to_raw` gives it back.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Layout {
    labels: [u8; TB_LAYOUT_CAPACITY],
}

impl TbLayout {
    /// The labels as text, up to the first NUL (lossy for bytes that are not UTF-8).
    fn text(&self) -> Option<String> {
        let bytes: Vec<u8> = self.labels.iter().map(|&c| c as u8).collect();
        let end = bytes.iter().position(|&b| b == 0)?;
        Some(String::from_utf8_lossy(&bytes[..end]).into_owned())
    }
}

/// The well-known layouts; the header spells each as a `TB_LAYOUT_*` macro (`TB_LAYOUT_NHWC`).
#[cfg(test)]
const WELL_KNOWN: [&str; 11] =
    ["HWC", "CHW", "NHWC", "NCHW", "NCDHW", "NDHWC", "NFCHW", "NFHWC", "HW", "NW", "NC"];

impl Layout {
    /// The empty layout ("no layout").
    pub(crate) const NONE: Layout = Layout { labels: [0; TB_LAYOUT_CAPACITY] };

    /// Checks a layout that C passed by value: NUL-terminated within `TB_LAYOUT_CAPACITY` bytes
    /// and valid labels.
    pub(crate) fn from_raw(raw: TbLayout) -> Result<Layout> {
        let text =
            raw.text().ok_or_else(|| Error::invalid_argument("layout is not NUL-terminated"))?;
        Layout::parse(&text)
    }

    /// The C value.
    pub(crate) fn to_raw(self) -> TbLayout {
        TbLayout { labels: self.labels.map(|b| b as c_char) }
    }

    /// Parses labels such as `"NHWC"`; the empty string gives `TbLayout::NONE`.
    pub(crate) fn parse(text: &str) -> Result<Self> {
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
            layout.labels[i] = b;
        }
        Ok(layout)
    }

    /// Number of labels (0 for the empty layout).
    pub(crate) fn rank(&self) -> usize {
        self.labels.iter().position(|&c| c == 0).unwrap_or(TB_LAYOUT_CAPACITY)
    }

    /// Whether this is the empty layout.
    pub(crate) fn is_none(&self) -> bool {
        self.rank() == 0
    }

    /// The labels as bytes, outermost first.
    pub(crate) fn as_bytes(&self) -> Vec<u8> {
        self.labels[..self.rank()].to_vec()
    }

    /// The labels as a string (`"NHWC"`, or `""` for none).
    pub(crate) fn as_string(&self) -> String {
        String::from_utf8_lossy(&self.as_bytes()).into_owned()
    }

    /// The position of `label`, if present.
    pub(crate) fn find(&self, label: u8) -> Option<usize> {
        self.as_bytes().iter().position(|&b| b == label)
    }

    /// Checks that this layout can describe a tensor of `rank` dimensions (none always can).
    pub(crate) fn check_rank(&self, rank: usize) -> Result<()> {
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
    pub(crate) fn permutation_to(&self, target: &Layout) -> Result<Vec<usize>> {
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
    pub(crate) fn permuted(&self, order: &[usize]) -> Layout {
        if self.is_none() {
            return Self::NONE;
        }
        let bytes = self.as_bytes();
        let mut out = Self::NONE;
        for (i, &src) in order.iter().enumerate() {
            out.labels[i] = bytes[src];
        }
        out
    }

    /// This layout without the label at `dim` (the layout of a selected sub-tensor).
    pub(crate) fn without(&self, dim: usize) -> Layout {
        if self.is_none() {
            return Self::NONE;
        }
        let mut bytes = self.as_bytes();
        bytes.remove(dim);
        let mut out = Self::NONE;
        for (i, b) in bytes.into_iter().enumerate() {
            out.labels[i] = b;
        }
        out
    }
}

impl std::fmt::Debug for Layout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Layout(\"{}\")", self.as_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_well_known_layouts() {
        for text in WELL_KNOWN {
            let layout = Layout::parse(text).unwrap();
            assert_eq!(layout.as_string(), text);
            assert_eq!(layout.rank(), text.len());
        }
        assert!(Layout::parse("").unwrap().is_none());
        assert_eq!(Layout::parse("ABCDEFGHIJKLMNO").unwrap().rank(), 15);
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
            let err = Layout::parse(text).unwrap_err();
            assert!(err.message.contains(fragment), "{text}: {}", err.message);
        }
    }

    #[test]
    fn finds_labels_and_permutes() {
        let nhwc = Layout::parse("NHWC").unwrap();
        let nchw = Layout::parse("NCHW").unwrap();
        assert_eq!(nhwc.find(b'C'), Some(3));
        assert_eq!(nhwc.find(b'D'), None);
        let order = nhwc.permutation_to(&nchw).unwrap();
        assert_eq!(order, vec![0, 3, 1, 2]);
        assert_eq!(nhwc.permuted(&order), nchw);
        assert_eq!(nhwc.without(0).as_string(), "HWC");
        let err = nhwc.permutation_to(&Layout::parse("NCHD").unwrap()).unwrap_err();
        assert!(err.message.contains("'D' is missing"));
    }

    #[test]
    fn rank_check_names_both_sides() {
        let err = Layout::parse("HWC").unwrap().check_rank(4).unwrap_err();
        assert!(err.message.contains("\"HWC\" has 3 labels but the tensor has rank 4"));
        Layout::NONE.check_rank(7).unwrap();
    }
}
