#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <system_error>
#include <thread>
#include <vector>

#include "util/parallel.h"

namespace tinygpt {
namespace {

// At most this many threads, the caller included. cmake/web.cmake has emscripten start the same
// number of Web Workers up front (-sPTHREAD_POOL_SIZE): a thread cannot be started while the
// calling thread blocks, and with PTHREAD_POOL_SIZE_STRICT=2 one more than the pool fails
// cleanly instead of hanging, so the pool below simply stops at the first failure.
constexpr int kMaxThreads = 16;
// Iterations (a few microseconds) a waiting thread polls before it sleeps: a region that follows
// closely on the last one, as in a forward pass, then costs a few atomic operations, not a futex
// wake-up (tens of microseconds in a browser); and a pause costs the page's other threads little.
// 2^15 measured no better on training or decode in Chromium (tools/web-check/bench_web.mjs).
constexpr int kSpinIterations = 1 << 11;

thread_local bool t_in_region = false;

class ThreadPool {
  public:
    // Never destroyed: its workers wait on its condition variable for as long as the process
    // (the page) lives, and destroying a condition variable with waiters blocks forever.
    static ThreadPool& instance() {
        static ThreadPool* pool = new ThreadPool;
        return *pool;
    }
    int size() const { return static_cast<int>(workers_.size()) + 1; }
    int threads() const { return threads_wanted_.load(std::memory_order_relaxed); }
    void set_threads(int threads) {
        threads_wanted_.store(std::clamp(threads, 1, size()), std::memory_order_relaxed);
    }

    // Regions from two threads of the engine (none today) would run one after the other.
    void run(int threads, void (*task)(void*, int, int), void* context) {
        std::lock_guard<std::mutex> one_region_at_a_time(run_mutex_);
        threads = std::clamp(threads, 1, size());
        task_ = task;
        context_ = context;
        region_threads_ = threads;
        // Every worker acknowledges every region, taking part or not, so none can still be
        // reading this region's task when the next one is written.
        remaining_.store(static_cast<int>(workers_.size()), std::memory_order_relaxed);
        generation_.fetch_add(1, std::memory_order_release);
        {
            std::lock_guard<std::mutex> lock(mutex_);  // see worker_loop: no wake-up is lost
        }
        started_.notify_all();

        std::exception_ptr error;
        t_in_region = true;
        try {
            task(context, 0, threads);
        } catch (...) {
            error = std::current_exception();
        }
        t_in_region = false;
        // The workers use the caller's stack (the task's captures): wait for all of them.
        wait_until(finished_, [&] { return remaining_.load(std::memory_order_acquire) == 0; });
        if (error) std::rethrow_exception(error);
    }

  private:
    ThreadPool() {
        const int wanted =
            std::clamp(static_cast<int>(std::thread::hardware_concurrency()), 1, kMaxThreads);
        for (int index = 1; index < wanted; ++index) {
            try {
                workers_.emplace_back([this, index] { worker_loop(index); });
            } catch (const std::system_error&) {
                break;  // the browser gave fewer workers than cores: use what there is
            }
        }
        for (std::thread& worker : workers_) worker.detach();  // they live as long as the page
        threads_wanted_.store(size(), std::memory_order_relaxed);
    }

    // Polls `ready` for kSpinIterations, then sleeps on `cv` until it holds. Whoever makes it
    // true does so before taking mutex_ to notify, and `ready` is checked again under mutex_:
    // the notification cannot fall between the check and the sleep.
    template <typename Ready>
    void wait_until(std::condition_variable& cv, Ready ready) {
        for (int spin = 0; spin < kSpinIterations; ++spin)
            if (ready()) return;
        std::unique_lock<std::mutex> lock(mutex_);
        cv.wait(lock, ready);
    }

    void worker_loop(int index) {
        t_in_region = true;
        uint64_t seen = 0;
        for (;;) {
            wait_until(started_,
                       [&] { return generation_.load(std::memory_order_acquire) != seen; });
            seen = generation_.load(std::memory_order_acquire);
            const int threads = region_threads_;
            if (index < threads) task_(context_, index, threads);  // kernels: they do not throw
            if (remaining_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
                std::lock_guard<std::mutex> lock(mutex_);
                finished_.notify_one();
            }
        }
    }

    std::vector<std::thread> workers_;
    std::atomic<int> threads_wanted_{1};
    std::mutex run_mutex_;
    std::mutex mutex_;
    std::condition_variable started_, finished_;
    std::atomic<uint64_t> generation_{0};
    std::atomic<int> remaining_{0};
    // Written by run() before the generation's release store, read by workers after its acquire.
    void (*task_)(void*, int, int) = nullptr;
    void* context_ = nullptr;
    int region_threads_ = 1;
};

}  // namespace

int parallel_threads() {
    return ThreadPool::instance().threads();
}
void set_parallel_threads(int threads) {
    ThreadPool::instance().set_threads(threads);
}
bool in_parallel() {
    return t_in_region;
}
int processor_count() {
    return std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
}

namespace detail {
void run_on_pool(int threads, void (*task)(void*, int, int), void* context) {
    ThreadPool::instance().run(threads, task, context);
}
}  // namespace detail

}  // namespace tinygpt
