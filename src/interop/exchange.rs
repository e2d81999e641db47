//! DLPack's C exchange API (`DLPackExchangeAPI`, DLPack 1.3): a producer's table of functions that
//! converts its Python objects to and from DLPack tensors without a Python-level call, and names
//! its current work stream. The rules of this module: which version of a producer's table
//! tensorbridge can use (the table's header chains to older versions), and what it offers itself.

use crate::error::{Error, Result};
use crate::interop::dlpack::{TB_DLPACK_MAJOR_VERSION, TB_DLPACK_MINOR_VERSION};

/// The DLPack version of the exchange API table that tensorbridge offers (the layout of
/// DLPack 1.3's table).
pub const TB_DLPACK_EXCHANGE_API_MINOR_VERSION: u32 = 3;

/// Picks, from a chain of table versions (newest first, as `(major, minor)`), the index of the
/// first one tensorbridge can use: major version 1. A chain with none is refused, naming the
/// versions offered.
pub(crate) fn usable_version(chain: &[(u32, u32)]) -> Result<usize> {
    if let Some(index) = chain.iter().position(|&(major, _)| major == TB_DLPACK_MAJOR_VERSION) {
        return Ok(index);
    }
    let offered: Vec<String> =
        chain.iter().map(|(major, minor)| format!("{major}.{minor}")).collect();
    Err(Error::not_supported(format!(
        "the producer's DLPack exchange API offers version(s) {}, none with major version \
         {TB_DLPACK_MAJOR_VERSION} (tensorbridge speaks DLPack {TB_DLPACK_MAJOR_VERSION}.\
         {TB_DLPACK_MINOR_VERSION})",
        if offered.is_empty() { "none".to_string() } else { offered.join(", ") }
    )))
}

/// Longest chain of table versions followed (a cycle in a producer's chain must not hang).
pub(crate) const MAX_CHAIN: usize = 8;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_major_1_table_of_the_chain_is_used() {
        assert_eq!(usable_version(&[(1, 3)]).unwrap(), 0);
        assert_eq!(usable_version(&[(2, 0), (1, 3)]).unwrap(), 1);
        let err = usable_version(&[(2, 0), (3, 1)]).unwrap_err();
        assert!(err.message.contains("2.0, 3.1"), "{}", err.message);
        assert!(usable_version(&[(0, 8)]).unwrap_err().message.contains("major version 1"));
    }
}
