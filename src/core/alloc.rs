//! The process's memory allocator: jemalloc, and giving back what it freed.
//!
//! Why not glibc's malloc: a sweep check allocates and frees a few hundred
//! small blocks (its TOML tree, its step, its record), and glibc's malloc
//! was 15–20% of a sweep's CPU, much of it in the paths its per-thread cache
//! misses (TOML's tree nodes are over 1 KB, and each such request first
//! consolidates the fast bins). jemalloc took 6–13% less CPU at 10,000 to
//! 1,000,000 checks, for a few MB more peak memory (bench/README.md,
//! "jemalloc, plain URLs and plain check sections"). mimalloc was tried twice before and dropped: it kept freed
//! segments, 72–99 MB peak against 25–43 MB.

#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's options, read when it starts (`_RJEM_MALLOC_CONF` in the
/// environment still overrides them): freed pages go back to the system
/// within a second instead of ten. `verify` of a 1,000,000-check bundle grows
/// and drops large vectors, and kept them as dirty pages: 41–42 MB peak
/// against 38 MB, for 13.0 s against 13.4 s; a sweep's time and peak do not
/// change (100,000 checks, 4 runs each).
#[cfg(not(target_env = "msvc"))]
#[unsafe(export_name = "_rjem_malloc_conf")]
static MALLOC_CONF: &[u8; 20] = b"dirty_decay_ms:1000\0";

/// Gives back to the system the memory freed so far, in every arena, rather
/// than when jemalloc's decay would (seconds later): called when a phase
/// that used more memory than what follows has ended (a sweep's first pass).
pub fn release_freed_memory() {
    #[cfg(not(target_env = "msvc"))]
    {
        // "arena.<MALLCTL_ARENAS_ALL>.purge": every arena at once.
        const PURGE_ALL_ARENAS: &std::ffi::CStr = c"arena.4096.purge";
        // SAFETY: a `purge` control reads and writes no value (null
        // pointers, zero length); it only returns unused dirty pages.
        let status = unsafe {
            tikv_jemalloc_sys::mallctl(
                PURGE_ALL_ARENAS.as_ptr(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                0,
            )
        };
        if status != 0 {
            tracing::debug!("jemalloc did not purge its arenas (error {status})");
        }
    }
}
