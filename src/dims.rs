//! `Dims`: a tensor's extents or strides, stored inline (no heap allocation) up to `INLINE`
//! entries, the ranks of images, batches of them and videos; a longer list lives on the heap, so
//! building one never fails (validation refuses a rank above `TB_MAX_RANK` as before). Importing
//! or viewing a tensor of such a rank therefore allocates nothing for its shape and strides, and
//! the tensor stays small enough to move cheaply.

use std::ops::{Deref, DerefMut};

/// Entries kept inline.
const INLINE: usize = 6;

/// A list of `i64` (extents or strides), inline up to `INLINE` entries. Dereferences to a
/// slice; equality and `Debug` are those of the slice.
#[derive(Clone)]
pub(crate) struct Dims(Repr);

#[derive(Clone)]
enum Repr {
    /// The first `len` entries of `values` are the list.
    Inline { len: usize, values: [i64; INLINE] },
    /// More than `INLINE` entries.
    Heap(Vec<i64>),
}

impl Dims {
    /// `len` zeros.
    #[inline]
    pub(crate) fn zeros(len: usize) -> Dims {
        match len <= INLINE {
            true => Dims(Repr::Inline { len, values: [0; INLINE] }),
            false => Dims(Repr::Heap(vec![0; len])),
        }
    }

    /// This list without the entry at `index`.
    pub(crate) fn without(&self, index: usize) -> Dims {
        self.iter().enumerate().filter(|&(i, _)| i != index).map(|(_, &value)| value).collect()
    }

    /// Appends `value`, spilling to the heap past `INLINE` entries.
    fn push(&mut self, value: i64) {
        match &mut self.0 {
            Repr::Inline { len, values } if *len < INLINE => {
                values[*len] = value;
                *len += 1;
            }
            Repr::Inline { len, values } => {
                let mut spilled = values[..*len].to_vec();
                spilled.push(value);
                self.0 = Repr::Heap(spilled);
            }
            Repr::Heap(values) => values.push(value),
        }
    }
}

impl Default for Dims {
    fn default() -> Dims {
        Dims::zeros(0)
    }
}

impl Deref for Dims {
    type Target = [i64];

    #[inline]
    fn deref(&self) -> &[i64] {
        match &self.0 {
            Repr::Inline { len, values } => &values[..*len],
            Repr::Heap(values) => values,
        }
    }
}

impl DerefMut for Dims {
    #[inline]
    fn deref_mut(&mut self) -> &mut [i64] {
        match &mut self.0 {
            Repr::Inline { len, values } => &mut values[..*len],
            Repr::Heap(values) => values,
        }
    }
}

impl FromIterator<i64> for Dims {
    fn from_iter<I: IntoIterator<Item = i64>>(iter: I) -> Dims {
        let mut dims = Dims::default();
        for value in iter {
            dims.push(value);
        }
        dims
    }
}

impl From<&[i64]> for Dims {
    #[inline]
    fn from(values: &[i64]) -> Dims {
        let mut dims = Dims::zeros(values.len());
        dims.copy_from_slice(values);
        dims
    }
}

impl<const N: usize> From<[i64; N]> for Dims {
    fn from(values: [i64; N]) -> Dims {
        values.into_iter().collect()
    }
}

impl From<Vec<i64>> for Dims {
    fn from(values: Vec<i64>) -> Dims {
        match values.len() <= INLINE {
            true => values.as_slice().into(),
            false => Dims(Repr::Heap(values)),
        }
    }
}

impl PartialEq for Dims {
    fn eq(&self, other: &Dims) -> bool {
        **self == **other
    }
}

impl Eq for Dims {}

impl std::fmt::Debug for Dims {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        (**self).fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_lists_are_inline_and_long_ones_spill() {
        let short = Dims::from(&[3i64, 4, 5][..]);
        assert!(matches!(short.0, Repr::Inline { len: 3, .. }));
        assert_eq!(&*short, &[3, 4, 5]);
        let full: Dims = (0..INLINE as i64).collect();
        assert!(matches!(full.0, Repr::Inline { .. }));
        let long: Dims = (0..INLINE as i64 + 2).collect();
        assert!(matches!(long.0, Repr::Heap(_)));
        assert_eq!(long.len(), INLINE + 2);
        assert_eq!(long[INLINE + 1], INLINE as i64 + 1);
        assert_eq!(Dims::from(long.to_vec()), long);
        assert_eq!(Dims::from(&long[..]), long);
        assert_eq!(long.without(0).len(), INLINE + 1);
        assert_eq!(Dims::zeros(2), Dims::from([0, 0]));
        assert_eq!(format!("{:?}", Dims::from([1, -2])), "[1, -2]");
    }
}
