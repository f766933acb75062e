// util/parallel.h's backend for native builds and for the browser's threaded build (WebAssembly
// pthreads, where the page is cross-origin isolated): a pool of worker threads started once, one
// per core the process may run on (or OMP_NUM_THREADS). A region's shares go to whichever thread
// claims them first, the caller included, so the caller never waits for a worker that has not
// started on one (thread_pool.cpp).
#pragma once
#include <type_traits>

namespace tinygpt {

int parallel_threads();
void set_parallel_threads(int threads);
bool in_parallel();
int processor_count();

namespace detail {
// Runs task(context, share, shares) for each share in [0, shares), shares = `threads` (any
// count up to 256, whatever the pool's size), on the calling thread and the workers, and returns
// when all have finished.
// A share's number, not the thread that runs it, is what a task may index per-share state by.
void run_on_pool(int threads, void (*task)(void*, int, int), void* context);
}  // namespace detail

template <typename Body>
void parallel_region(int threads, Body&& body) {
    if (threads <= 1 || in_parallel()) {
        body(0, 1);
        return;
    }
    using BodyType = std::remove_reference_t<Body>;
    detail::run_on_pool(
        threads,
        [](void* context, int thread, int count) {
            (*static_cast<BodyType*>(context))(thread, count);
        },
        &body);
}

}  // namespace tinygpt
