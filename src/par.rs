//! CPU-bound batch work (signing, signature verification) split across cores on scoped threads.
//!
//! The node's blocking pool runs one batch at a time per node; a batch of thousands of entries
//! spends most of its time in ed25519, which parallelises perfectly, so it is cut into one
//! contiguous chunk per core and the results are put back in order.

/// Most threads one batch is spread over (the machine may have fewer cores; the target
/// machine has 2). Each is a short-lived scoped thread, so this also bounds the threads a node
/// runs at once for one batch.
pub const THREADS_MAX: usize = 4;
/// Fewest items per chunk: below this, starting a thread costs more than the work it takes over
/// (a thread start is about 20 µs, one ed25519 operation 20–50 µs).
pub const CHUNK_MIN: usize = 32;

/// Threads worth using for `n` items on this machine.
pub fn threads_for(n: usize) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
    cores.min(THREADS_MAX).min(n / CHUNK_MIN).max(1)
}

/// `f` over `items` cut into contiguous chunks, one per thread (the first on the calling thread),
/// results concatenated in input order. `f` must return one result per item.
pub fn map_chunks<T: Send, R: Send>(items: Vec<T>, f: impl Fn(Vec<T>) -> Vec<R> + Sync) -> Vec<R> {
    let threads = threads_for(items.len());
    if threads <= 1 {
        return f(items);
    }
    let per = items.len().div_ceil(threads);
    let mut chunks: Vec<Vec<T>> = Vec::with_capacity(threads);
    let mut rest = items;
    while rest.len() > per {
        let tail = rest.split_off(per);
        chunks.push(rest);
        rest = tail;
    }
    chunks.push(rest);
    let f = &f;
    std::thread::scope(|s| {
        let mut it = chunks.into_iter();
        let first = it.next().expect("at least one chunk");
        let handles: Vec<_> = it.map(|c| s.spawn(move || f(c))).collect();
        let mut out = f(first);
        for h in handles {
            out.extend(h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)));
        }
        out
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_keep_input_order_across_chunks() {
        for n in [0, 1, CHUNK_MIN - 1, CHUNK_MIN * 2, CHUNK_MIN * 7 + 3, 1000] {
            let items: Vec<usize> = (0..n).collect();
            let out = map_chunks(items, |c| c.into_iter().map(|x| x * 2).collect());
            assert_eq!(out, (0..n).map(|x| x * 2).collect::<Vec<_>>(), "n = {n}");
        }
    }
}
