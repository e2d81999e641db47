//! Leases: an exporter keeps the memory it shared with another process until that process has
//! released it, with no protocol for the application to write.
//!
//! Each exporting process has a lease table: a small file in shared memory (`/dev/shm`, named
//! after the process id and its nonce) of `SLOTS` 64-bit words, mapped by the exporter and by
//! every importer: a generation (high 32 bits, new for every lease, so a stale descriptor never
//! claims a later lease of the same slot) and a state (low 32 bits). An export takes a free slot,
//! holds a reference to the tensor there and sets the state to `SENT`; the import that receives
//! the descriptor claims it (`SENT` → its process id, so one descriptor is imported once), and its
//! release clears the state to 0 once the importer's work on the memory is done. The exporter drops the references of words that are 0
//! — and of importers that died — whenever it exports again and when asked (`collect`). The file
//! is removed when the exporting process exits normally; files of exporters that were killed are
//! removed by the next exporter that starts.

use crate::error::{Error, Result};
use crate::tensor::Tensor;
use std::collections::HashMap;
use std::ffi::CString;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};

/// Words of a lease table.
pub(crate) const SLOTS: u32 = 1 << 16;
/// A state between export and import.
const SENT: u32 = u32::MAX;
/// The state once the importer has released the memory (or before any export).
const RELEASED: u32 = 0;
/// The bits of a word that hold the state (the importer's release clears them).
pub(crate) const STATE_BITS: u64 = 0xffff_ffff;

fn word(generation: u32, state: u32) -> u64 {
    (u64::from(generation) << 32) | u64::from(state)
}

fn split(word: u64) -> (u32, u32) {
    ((word >> 32) as u32, word as u32)
}

/// Where exporter `process` (with `nonce`) keeps its lease table.
fn table_path(process: u32, nonce: u64) -> PathBuf {
    directory().join(format!("tensorbridge-ipc-{process}-{nonce:016x}"))
}

fn directory() -> PathBuf {
    let shm = PathBuf::from("/dev/shm");
    if shm.is_dir() { shm } else { std::env::temp_dir() }
}

/// Whether process `process` exists (or may: one we may not signal exists too).
pub(crate) fn process_alive(process: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(process) else { return false };
    // SAFETY: signal 0 only checks that the process exists and may be signalled.
    pid > 0
        && (unsafe { libc::kill(pid, 0) } == 0
            || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH))
}

/// Maps the lease table at `path` (creating it, zero-filled, when `create`) for the life of the
/// process.
fn map_table(path: &PathBuf, create: bool) -> std::io::Result<&'static [AtomicU64]> {
    use std::os::unix::fs::OpenOptionsExt;
    let bytes = SLOTS as usize * size_of::<AtomicU64>();
    let mut options = std::fs::OpenOptions::new();
    options.read(true).write(true).mode(0o600);
    if create {
        options.create_new(true);
    }
    let file = options.open(path)?;
    if create {
        file.set_len(bytes as u64)?;
    }
    if file.metadata()?.len() != bytes as u64 {
        return Err(std::io::Error::other("not a lease table (wrong size)"));
    }
    use std::os::fd::AsRawFd;
    // SAFETY: a shared read-write mapping of a file of `bytes` bytes, kept for the process's life
    // (never unmapped), so the slice below stays valid; the file may be closed after mapping.
    let address = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            bytes,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            file.as_raw_fd(),
            0,
        )
    };
    if address == libc::MAP_FAILED {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `bytes` bytes of page-aligned shared memory, valid forever, accessed only
    // atomically (by this process and the others that map the same file).
    Ok(unsafe { std::slice::from_raw_parts(address as *const AtomicU64, SLOTS as usize) })
}

/// This process's lease table as exporter.
struct Exporter {
    words: &'static [AtomicU64],
    /// The tensors leased, by slot.
    held: HashMap<u32, Tensor>,
    /// Slots never used yet start here.
    next: u32,
    /// Slots given back.
    free: Vec<u32>,
}

impl Exporter {
    /// Drops the leases their importers released (word 0), and with `check_importers` also those
    /// whose importer died without releasing. Returns how many stay held.
    fn sweep(&mut self, check_importers: bool) -> usize {
        let words = self.words;
        let mut done = Vec::new();
        for &slot in self.held.keys() {
            let (_, state) = split(words[slot as usize].load(Ordering::Acquire));
            let dead =
                check_importers && state != SENT && state != RELEASED && !process_alive(state);
            if state == RELEASED || dead {
                done.push(slot);
            }
        }
        for slot in done {
            words[slot as usize].fetch_and(!STATE_BITS, Ordering::AcqRel);
            self.held.remove(&slot);
            self.free.push(slot);
        }
        self.held.len()
    }
}

/// The nonce that names this process in descriptors and in its lease table's name.
fn nonce() -> u64 {
    crate::cuda::ipc::process_nonce()
}

/// This process's lease table, made by its first export.
static EXPORTER: OnceLock<std::result::Result<Mutex<Exporter>, String>> = OnceLock::new();

/// The lease table, made (with its file in shared memory) on first use.
fn exporter() -> Result<MutexGuard<'static, Exporter>> {
    lock(EXPORTER.get_or_init(|| {
        remove_stale_tables();
        let path = table_path(std::process::id(), nonce());
        let words = map_table(&path, true).map_err(|error| {
            format!("cannot create the lease table {}: {error}", path.display())
        })?;
        remove_at_exit(path);
        Ok(Mutex::new(Exporter { words, held: HashMap::new(), next: 0, free: Vec::new() }))
    }))
}

/// The lease table behind `made`, locked; the reason it could not be made otherwise.
fn lock(
    made: &'static std::result::Result<Mutex<Exporter>, String>,
) -> Result<MutexGuard<'static, Exporter>> {
    match made {
        Ok(table) => Ok(table.lock().unwrap_or_else(|poisoned| poisoned.into_inner())),
        Err(message) => Err(Error::internal(message.clone())),
    }
}

/// Removes the lease tables of exporters that no longer exist (killed before they could).
fn remove_stale_tables() {
    let Ok(entries) = std::fs::read_dir(directory()) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix("tensorbridge-ipc-")) else {
            continue;
        };
        let process = rest.split('-').next().and_then(|p| p.parse::<u32>().ok());
        if process.is_some_and(|p| !process_alive(p)) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Removes this process's lease table when it exits normally (importers that mapped it keep
/// their mapping; new imports of its descriptors then fail, as they must: the exporter is gone).
fn remove_at_exit(path: PathBuf) {
    static PATH: OnceLock<CString> = OnceLock::new();
    extern "C" fn remove() {
        if let Some(path) = PATH.get() {
            // SAFETY: a NUL-terminated path that lives for the process.
            unsafe { libc::unlink(path.as_ptr()) };
        }
    }
    use std::os::unix::ffi::OsStrExt;
    if let Ok(path) = CString::new(path.as_os_str().as_bytes())
        && PATH.set(path).is_ok()
    {
        // SAFETY: registers a function that only unlinks a file; safe at exit.
        unsafe { libc::atexit(remove) };
    }
}

/// A lease: which word of the exporter's table, and its generation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Lease {
    pub slot: u32,
    pub generation: u32,
}

/// Holds `tensor` until the import of the descriptor that carries the returned lease has been
/// released (or its importer has died, or `revoke`). Drops the leases released since last time.
pub(crate) fn grant(tensor: &Tensor) -> Result<Lease> {
    let mut table = exporter()?;
    table.sweep(false);
    let slot = match table.free.pop() {
        Some(slot) => slot,
        None if table.next < SLOTS => {
            table.next += 1;
            table.next - 1
        }
        None if table.sweep(true) < SLOTS as usize => table.free.pop().expect("swept"),
        None => {
            return Err(Error::out_of_memory(format!(
                "{SLOTS} exported tensors are still held by their importers (or were never \
                 imported): release imports, or tb_ipc_revoke descriptors that were lost"
            )));
        }
    };
    let (previous, _) = split(table.words[slot as usize].load(Ordering::Acquire));
    let generation = previous.wrapping_add(1);
    table.words[slot as usize].store(word(generation, SENT), Ordering::Release);
    table.held.insert(slot, tensor.clone());
    Ok(Lease { slot, generation })
}

/// Gives up the lease of a descriptor this process exported and nobody imported; refused once
/// imported (the importer's release ends the lease then).
pub(crate) fn revoke(lease: Lease) -> Result<()> {
    let Lease { slot, generation } = lease;
    let mut table = exporter()?;
    let word_of = table.words.get(slot as usize).filter(|_| table.held.contains_key(&slot));
    let ended = || {
        Error::invalid_argument(format!(
            "lease {slot}.{generation} is not held: the descriptor was revoked or released already"
        ))
    };
    let Some(found) = word_of else { return Err(ended()) };
    let sent = word(generation, SENT);
    match found.compare_exchange(
        sent,
        word(generation, RELEASED),
        Ordering::AcqRel,
        Ordering::Acquire,
    ) {
        Ok(_) => {}
        Err(now) => match split(now) {
            (current, importer) if current == generation && importer != RELEASED => {
                return Err(Error::invalid_argument(format!(
                    "the descriptor was imported by process {importer}: its lease ends when \
                     that import is released"
                )));
            }
            _ => return Err(ended()),
        },
    }
    table.held.remove(&slot);
    table.free.push(slot);
    Ok(())
}

/// Drops released leases and those of importers that died; returns how many are still held
/// (0 in a process that never exported: no table is made for the question).
pub(crate) fn collect() -> Result<usize> {
    match EXPORTER.get() {
        Some(made) => Ok(lock(made)?.sweep(true)),
        None => Ok(0),
    }
}

/// Lease tables of other processes mapped here, by (process id, nonce).
type Tables = HashMap<(u32, u64), &'static [AtomicU64]>;

/// Importer side: the lease tables of other processes, mapped once each.
fn imported_tables() -> MutexGuard<'static, Tables> {
    static TABLES: OnceLock<Mutex<Tables>> = OnceLock::new();
    TABLES.get_or_init(Default::default).lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Claims `lease` of exporter `process` (with `nonce`) for this process: the word whose state
/// (`STATE_BITS`) the import's release must clear. Refused when the exporter is gone or the
/// descriptor was imported or revoked before.
pub(crate) fn claim(process: u32, nonce: u64, lease: Lease) -> Result<&'static AtomicU64> {
    let Lease { slot, generation } = lease;
    let gone = || {
        Error::cuda(format!(
            "the exporting process {process} has exited: its memory is gone (import descriptors \
             while the exporter runs)"
        ))
    };
    if !process_alive(process) {
        return Err(gone());
    }
    let words = {
        let mut tables = imported_tables();
        match tables.get(&(process, nonce)) {
            Some(words) => *words,
            None => {
                let words = map_table(&table_path(process, nonce), false).map_err(|error| {
                    match error.kind() {
                        std::io::ErrorKind::NotFound => gone(),
                        _ => Error::cuda(format!(
                            "cannot open the lease table of exporting process {process}: {error}"
                        )),
                    }
                })?;
                tables.insert((process, nonce), words);
                words
            }
        }
    };
    let claimed = word(generation, std::process::id());
    let Some(found) = words.get(slot as usize) else {
        return Err(Error::invalid_argument(format!("IPC descriptor lease {slot} out of range")));
    };
    match found
        .compare_exchange(word(generation, SENT), claimed, Ordering::AcqRel, Ordering::Acquire)
        .map_err(split)
    {
        Ok(_) => Ok(found),
        Err((current, importer)) if current == generation && importer != RELEASED => {
            Err(Error::invalid_argument(format!(
                "this descriptor was imported already (by process {importer}): a descriptor is \
                 imported once; export again for another import"
            )))
        }
        Err(_) => Err(Error::invalid_argument(
            "this descriptor's lease has ended (revoked by the exporter, or imported and \
             released already): a descriptor is imported once; export again for another import",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_table_is_shared_by_mapping_it_twice() {
        let path = directory().join(format!("tensorbridge-ipc-test-{}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let exporter = map_table(&path, true).unwrap();
        let importer = map_table(&path, false).unwrap();
        exporter[7].store(word(3, SENT), Ordering::Release);
        let claimed = importer[7].compare_exchange(
            word(3, SENT),
            word(3, 42),
            Ordering::AcqRel,
            Ordering::Acquire,
        );
        assert_eq!(claimed, Ok(word(3, SENT)));
        assert_eq!(split(exporter[7].load(Ordering::Acquire)), (3, 42));
        importer[7].fetch_and(!STATE_BITS, Ordering::AcqRel);
        assert_eq!(split(exporter[7].load(Ordering::Acquire)), (3, RELEASED));
        assert!(map_table(&path, true).is_err(), "an existing table is never created again");
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn dead_and_live_processes_are_told_apart() {
        assert!(process_alive(std::process::id()));
        assert!(!process_alive(0));
        assert!(!process_alive(u32::MAX));
    }
}
