// The engine's one door to threads. Every parallel loop of the kernels goes through these few
// functions; where the threads come from is a backend chosen at build time:
//   - the engine's thread pool (native builds, and the browser's threaded build over WebAssembly
//     pthreads: util/parallel/thread_pool.h, compiled with TINYGPT_THREAD_POOL),
//   - one thread (the browser's build for pages that are not cross-origin isolated, where
//     WebAssembly threads are unavailable: util/parallel/serial.h).
// Not OpenMP's parallel regions: a region of theirs ends only when every thread of the team has
// arrived, so on a shared machine a fork/join waited for whichever thread the kernel had
// descheduled (BENCHMARKS.md, "Decode on a shared machine: the engine's own pool").
// A backend provides parallel_threads(), set_parallel_threads(), in_parallel() and
// parallel_region(); the loops below are built on parallel_region alone.
#pragma once
#include <algorithm>
#include <atomic>

#if defined(TINYGPT_THREAD_POOL)
#include "util/parallel/thread_pool.h"
#else
#include "util/parallel/serial.h"
#endif

namespace tinygpt {

// The part [begin, end) of [0, n) that thread `thread` of `threads` takes in a static split:
// contiguous blocks, the first n % threads blocks one longer (OpenMP's schedule(static)).
struct IndexRange {
    long begin;
    long end;
};
inline IndexRange static_share(long n, int thread, int threads) {
    const long base = n / threads, extra = n % threads;
    const long begin = thread * base + std::min<long>(thread, extra);
    return {begin, begin + base + (thread < extra ? 1 : 0)};
}

// Threads a region started now would get: 1 inside a parallel region (regions do not nest).
inline int threads_for_region(bool worth_threads) {
    return worth_threads && !in_parallel() ? parallel_threads() : 1;
}

// Runs body(i) for every i in [0, n): split statically over the threads when `worth_threads`
// (the caller's judgement that the work pays for a fork/join) and not already inside a parallel
// region; on the calling thread otherwise, without touching the threading runtime at all.
template <typename Body>
void parallel_for(long n, bool worth_threads, Body&& body) {
    if (const int threads = threads_for_region(worth_threads && n > 0); threads > 1) {
        parallel_region(threads, [&](int thread, int count) {
            const IndexRange share = static_share(n, thread, count);
            for (long i = share.begin; i < share.end; ++i) body(i);
        });
    } else {
        for (long i = 0; i < n; ++i) body(i);
    }
}

// As parallel_for, with the indices handed out one at a time: for items of uneven cost (the
// experts of a layer, the words of a BPE merge pass).
template <typename Body>
void parallel_for_dynamic(long n, bool worth_threads, Body&& body) {
    if (const int threads = threads_for_region(worth_threads && n > 1); threads > 1) {
        std::atomic<long> next{0};
        parallel_region(threads, [&](int, int) {
            for (long i = next.fetch_add(1, std::memory_order_relaxed); i < n;
                 i = next.fetch_add(1, std::memory_order_relaxed))
                body(i);
        });
    } else {
        for (long i = 0; i < n; ++i) body(i);
    }
}

// Runs body(thread, i) for every i in [0, n), split statically over `threads` threads (from
// threads_for_region): for loops that accumulate into per-thread buffers, indexed by `thread`
// (always < threads), and summed afterwards.
template <typename Body>
void parallel_for_per_thread(long n, int threads, Body&& body) {
    parallel_region(threads, [&](int thread, int count) {
        const IndexRange share = static_share(n, thread, count);
        for (long i = share.begin; i < share.end; ++i) body(thread, i);
    });
}

// Multiply-adds below which one thread is faster: a fork/join costs a few microseconds, the time
// of about 10^5 multiply-adds on one core (the decode kernels' threshold).
constexpr long kMinParallelMultiplyAdds = 1L << 17;

constexpr long kParallelChunk = 16384;

// Splits [0, n) into fixed chunks of `chunk` and runs fn(begin, count) for each, over the
// threads when there is more than one chunk. Element loops should live in the callee over a
// contiguous range: GCC does not reliably vectorise the body of a `parallel for simd` loop with
// an `if` clause, but it does vectorise a plain `omp simd` loop over a range. Fixed chunk
// boundaries also keep per-chunk reductions identical for any thread count.
template <typename Fn>
void parallel_for_chunks(long n, Fn&& fn, long chunk = kParallelChunk) {
    const long chunks = (n + chunk - 1) / chunk;
    parallel_for(chunks, chunks > 1, [&](long c) {
        const long begin = c * chunk;
        fn(begin, std::min(begin + chunk, n) - begin);
    });
}

}  // namespace tinygpt
