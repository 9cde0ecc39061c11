//! CPU-bound batch work (signing, signature verification) split across cores on scoped threads.
//!
//! The node's blocking pool runs one batch at a time per node; a batch of thousands of entries
//! spends most of its time in ed25519, which parallelises perfectly, so it is cut into one
//! contiguous chunk per core and the results are put back in order.
//!
//! The chunks run on one fixed pool of threads started on first use and kept for the life of the
//! process. Spawning fresh threads per batch (as this module first did) started about 100 threads
//! in a 100,000-entry ingest; each left its allocator pages behind when it ended, and a node's
//! peak RSS while ingesting was 2–3× its live heap (`scripts/bench.sh --only footprint`).

/// Most threads one batch is spread over (the machine may have fewer cores; the target
/// machine has 2). The pool has this many threads at most, so this also bounds the threads a
/// process runs for batch work.
pub const THREADS_MAX: usize = 4;
/// Fewest items per chunk: below this, starting a thread costs more than the work it takes over
/// (a thread start is about 20 µs, one ed25519 operation 20–50 µs).
pub const CHUNK_MIN: usize = 32;

/// Threads worth using for `n` items on this machine.
pub fn threads_for(n: usize) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
    cores.min(THREADS_MAX).min(n / CHUNK_MIN).max(1)
}

/// The process-wide pool for [`map_chunks`], or `None` where no thread could be started (then
/// batches run on the calling thread).
fn pool() -> Option<&'static rayon_core::ThreadPool> {
    static POOL: std::sync::OnceLock<Option<rayon_core::ThreadPool>> = std::sync::OnceLock::new();
    POOL.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
        rayon_core::ThreadPoolBuilder::new()
            .num_threads(cores.min(THREADS_MAX))
            .thread_name(|i| format!("ctix-par-{i}"))
            .build()
            .inspect_err(
                |e| tracing::warn!(error = %e, "could not start the batch thread pool: batches run on one core"),
            )
            .ok()
    })
    .as_ref()
}

/// `f` over `items` cut into contiguous chunks, one per pool thread, results concatenated in
/// input order. `f` must return one result per item. A panic in `f` is passed on to the caller.
pub fn map_chunks<T: Send, R: Send>(items: Vec<T>, f: impl Fn(Vec<T>) -> Vec<R> + Sync) -> Vec<R> {
    let threads = threads_for(items.len());
    let pool = match pool() {
        Some(pool) if threads > 1 => pool,
        _ => return f(items),
    };
    debug_assert!(threads <= pool.current_num_threads());
    let per = items.len().div_ceil(threads);
    let chunks = split_into(items, per);
    let f = &f;
    let mut outs: Vec<Vec<R>> = chunks.iter().map(|_| Vec::new()).collect();
    pool.scope(|s| {
        for (chunk, out) in chunks.into_iter().zip(outs.iter_mut()) {
            s.spawn(move |_| *out = f(chunk));
        }
    });
    outs.into_iter().flatten().collect()
}

/// `items` cut into consecutive runs of at most `n` (none for no items), in order.
pub fn split_into<T>(items: Vec<T>, n: usize) -> Vec<Vec<T>> {
    let n = n.max(1);
    let mut out = Vec::with_capacity(items.len().div_ceil(n));
    // Each item moves once (`split_off` from the front would copy the rest at every cut).
    let mut items = items.into_iter();
    loop {
        let run: Vec<T> = items.by_ref().take(n).collect();
        if run.is_empty() {
            return out;
        }
        out.push(run);
    }
}

/// Runs `a` and `b` at the same time on two pool threads (one after the other on the calling
/// thread where there is no pool or only one core), for a pipeline that works on one batch while
/// it prepares the next. A panic in either is passed on to the caller.
pub fn join<RA: Send, RB: Send>(a: impl FnOnce() -> RA + Send, b: impl FnOnce() -> RB + Send) -> (RA, RB) {
    match pool() {
        Some(pool) if pool.current_num_threads() > 1 => pool.join(a, b),
        _ => (a(), b()),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn split_into_cuts_consecutive_runs_of_at_most_n() {
        for (len, n, want) in
            [(0, 4, vec![]), (1, 4, vec![1]), (4, 4, vec![4]), (5, 4, vec![4, 1]), (12, 4, vec![4, 4, 4])]
        {
            let items: Vec<usize> = (0..len).collect();
            let runs = split_into(items.clone(), n);
            assert_eq!(runs.iter().map(Vec::len).collect::<Vec<_>>(), want, "{len} items by {n}");
            assert_eq!(runs.concat(), items, "order kept");
        }
    }

    #[test]
    fn results_keep_input_order_across_chunks() {
        for n in [0, 1, CHUNK_MIN - 1, CHUNK_MIN * 2, CHUNK_MIN * 7 + 3, 1000] {
            let items: Vec<usize> = (0..n).collect();
            let out = map_chunks(items, |c| c.into_iter().map(|x| x * 2).collect());
            assert_eq!(out, (0..n).map(|x| x * 2).collect::<Vec<_>>(), "n = {n}");
        }
    }

    #[test]
    fn batches_run_on_the_pool_threads_every_time() {
        let n = CHUNK_MIN * THREADS_MAX;
        if threads_for(n) <= 1 {
            return; // one core: batches run on the calling thread, no pool to check
        }
        let mut seen = BTreeSet::new();
        for _ in 0..20 {
            let out = map_chunks((0..n).collect::<Vec<_>>(), |c| {
                let me = std::thread::current().name().unwrap_or_default().to_owned();
                c.into_iter().map(|_| me.clone()).collect()
            });
            seen.extend(out);
        }
        let pool_size = pool().expect("pool started").current_num_threads();
        assert!(seen.iter().all(|n| n.starts_with("ctix-par-")), "chunks ran outside the pool: {seen:?}");
        assert!(seen.len() <= pool_size, "20 batches used {} threads, pool has {pool_size}", seen.len());
    }

    #[test]
    fn a_panic_in_a_chunk_reaches_the_caller() {
        let r = std::panic::catch_unwind(|| {
            map_chunks((0..CHUNK_MIN * 4).collect::<Vec<usize>>(), |c| {
                assert!(!c.contains(&(CHUNK_MIN * 4 - 1)), "boom");
                c
            })
        });
        assert!(r.is_err());
    }
}
