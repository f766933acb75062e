// util/parallel.h's backend for the browser's threaded build (WebAssembly pthreads, where the
// page is cross-origin isolated; emscripten has no OpenMP): a pool of worker threads started
// once, which the calling thread joins as thread 0 of every region (thread_pool.cpp).
#pragma once
#include <type_traits>

namespace tinygpt {

int parallel_threads();
void set_parallel_threads(int threads);
bool in_parallel();
int processor_count();

namespace detail {
// Runs task(context, thread, threads) on `threads` threads (the caller is thread 0; fewer if
// the pool has fewer) and returns when all have finished.
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
