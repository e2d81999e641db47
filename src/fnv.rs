//! 64-bit FNV-1a over framed parts: a stable hash (std's hasher may change between releases)
//! for the kernel cache's file names and integrity trailers and the IPC descriptor's checksum.

/// FNV-1a 64 of `parts`, each followed by a 0xff byte, so that moving bytes from one part to the
/// next changes the hash.
pub(crate) fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    for part in parts {
        for &byte in part.iter().chain(&[0xff]) {
            hash = (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    hash
}
