#include "util/parallel/thread_pool.h"

#include <algorithm>
#include <cstdlib>
#include <system_error>
#if defined(__linux__)
#include <sched.h>
#endif
#if !defined(__EMSCRIPTEN__)
#include <pthread.h>
#endif

#include "util/parallel/claiming_pool.h"

namespace tinygpt {
namespace {

// Polls (with a pause) a waiting thread makes before it sleeps: tens of microseconds, so a region
// that follows closely on the last one, as in a forward pass, costs a few atomic operations, not
// a futex wake-up (tens of microseconds, more in a browser). A worker that sleeps through a region
// costs that region only its help: the calling thread takes the shares nobody claimed.
constexpr int kSpinIterations = 1 << 12;

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    asm volatile("yield");
#endif
}

thread_local bool t_in_region = false;

struct Claims {
    static constexpr int kShareBits = 12;
    static constexpr uint64_t kShareMask = (uint64_t{1} << kShareBits) - 1;
    static uint64_t pack(uint64_t region, uint64_t shares, uint64_t next) {
        return region << (2 * kShareBits) | shares << kShareBits | next;
    }
    // The region number's bits: it wraps after 2^40 regions (months of back-to-back regions),
    // and the comparisons see it wrapped, so a claim never fails for the current region.
    static constexpr uint64_t kRegionMask = (uint64_t{1} << (64 - 2 * kShareBits)) - 1;
    static uint64_t region(uint64_t word) { return word >> (2 * kShareBits); }
    static int shares(uint64_t word) { return static_cast<int>(word >> kShareBits & kShareMask); }
    static int next(uint64_t word) { return static_cast<int>(word & kShareMask); }
    static bool claimable(uint64_t word) { return next(word) < shares(word); }
};
static_assert(ClaimingPool::kMaxThreads <= static_cast<int>(Claims::kShareMask));

#if defined(__EMSCRIPTEN__)
// cmake/web.cmake has emscripten start this many Web Workers up front (-sPTHREAD_POOL_SIZE): a
// thread cannot be started while the calling thread blocks, and with PTHREAD_POOL_SIZE_STRICT=2
// one more than the pool fails cleanly instead of hanging, so the pool simply stops at the
// first failure.
constexpr int kProcessMaxThreads = 16;
#else
constexpr int kProcessMaxThreads = ClaimingPool::kMaxThreads;
#endif

int cpus_available() {
#if defined(__linux__)
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) == 0) return std::max(1, CPU_COUNT(&set));
#endif
    return std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
}

// OMP_NUM_THREADS, which users of OpenMP programs (and of this engine before its own pool) set,
// when it holds a positive number (at most the pool's limit of shares); 0 otherwise.
int threads_from_environment() {
    const char* value = std::getenv("OMP_NUM_THREADS");
    if (!value) return 0;
    char* end = nullptr;
    const long threads = std::strtol(value, &end, 10);
    return end != value && threads > 0
               ? static_cast<int>(std::min<long>(threads, ClaimingPool::kMaxThreads))
               : 0;
}

// Set in the child of a fork(): the pool's workers were not copied, and a lock one of them held
// at the fork would never be released; the child runs every share on its one thread.
std::atomic<bool> g_forked_child{false};

// The process's pool: a worker per core this process may run on, never destroyed (its workers
// wait for as long as the process, or the page, lives).
struct ProcessPool {
    ClaimingPool pool{std::min(cpus_available(), kProcessMaxThreads) - 1};
    std::atomic<int> threads{1};
    ProcessPool() {
        const int from_environment = threads_from_environment();
        threads.store(from_environment > 0 ? from_environment : pool.size());
#if !defined(__EMSCRIPTEN__)
        pthread_atfork(nullptr, nullptr, [] { g_forked_child.store(true); });
#endif
    }
    static ProcessPool& instance() {
        static ProcessPool* process_pool = new ProcessPool;
        return *process_pool;
    }
};

}  // namespace

ClaimingPool::ClaimingPool(int workers, std::function<void()> on_start, uint64_t regions_before)
    : region_(regions_before & Claims::kRegionMask) {
    claims_.store(Claims::pack(region_, 0, 0));  // nothing to claim until the first region
    workers = std::clamp(workers, 0, kMaxThreads - 1);
    for (int index = 0; index < workers; ++index) {
        try {
            workers_.emplace_back([this, on_start] { worker_loop(on_start); });
        } catch (const std::system_error&) {
            break;  // the browser gave fewer workers than cores: use what there is
        }
    }
}

ClaimingPool::~ClaimingPool() {
    stopping_.store(true, std::memory_order_seq_cst);
    { std::lock_guard<std::mutex> lock(mutex_); }
    work_posted_.notify_all();
    for (std::thread& worker : workers_) worker.join();
}

void ClaimingPool::run(int threads, void (*task)(void*, int, int), void* context) {
    std::lock_guard<std::mutex> one_region_at_a_time(run_mutex_);
    const int shares = std::clamp(threads, 1, kMaxThreads);
    task_ = task;
    context_ = context;
    error_ = nullptr;
    unfinished_.store(shares, std::memory_order_relaxed);
    region_ = (region_ + 1) & Claims::kRegionMask;
    // seq_cst, as the load of sleepers_ after it (the handshake of wait_until).
    claims_.store(Claims::pack(region_, static_cast<uint64_t>(shares), 0),
                  std::memory_order_seq_cst);
    if (sleepers_.load(std::memory_order_seq_cst) > 0) {
        { std::lock_guard<std::mutex> lock(mutex_); }
        work_posted_.notify_all();
    }
    for (int share = claim(region_); share >= 0; share = claim(region_)) run_share(share);
    // The workers use the caller's stack (the task's captures): wait for every claimed share.
    wait_until(caller_sleeping_, region_done_,
               [&] { return unfinished_.load(std::memory_order_seq_cst) == 0; });
    if (error_) std::rethrow_exception(error_);
}

// The share of `region` that this thread now owns, or -1 when none is left (or the region is
// over: the word then carries a later region's number, and the claim fails).
int ClaimingPool::claim(uint64_t region) {
    uint64_t word = claims_.load(std::memory_order_acquire);
    for (;;) {
        if (Claims::region(word) != region || !Claims::claimable(word)) return -1;
        if (claims_.compare_exchange_weak(word, word + 1, std::memory_order_acq_rel,
                                          std::memory_order_acquire))
            return Claims::next(word);
    }
}

// Runs a share this thread has claimed: the claim keeps the region (task_, context_) alive.
void ClaimingPool::run_share(int share) {
    const bool was_in_region = t_in_region;
    t_in_region = true;
    try {
        task_(context_, share, Claims::shares(claims_.load(std::memory_order_relaxed)));
    } catch (...) {
        std::lock_guard<std::mutex> lock(mutex_);
        if (!error_) error_ = std::current_exception();
    }
    t_in_region = was_in_region;
    if (unfinished_.fetch_sub(1, std::memory_order_seq_cst) == 1 &&
        caller_sleeping_.load(std::memory_order_seq_cst) > 0) {
        { std::lock_guard<std::mutex> lock(mutex_); }
        region_done_.notify_all();
    }
}

// Polls `ready` for kSpinIterations, then sleeps on `cv` until it holds. The sleeper counts
// itself in `sleepers` before it checks `ready` under mutex_; whoever makes `ready` true does so
// before it reads `sleepers` (all four accesses sequentially consistent), so either the sleeper
// sees the change or the waker sees the sleeper and notifies after taking mutex_: no wake-up is
// lost.
template <typename Ready>
void ClaimingPool::wait_until(std::atomic<int>& sleepers, std::condition_variable& cv,
                              Ready ready) {
    for (int spin = 0; spin < kSpinIterations; ++spin) {
        if (ready()) return;
        cpu_relax();
    }
    sleepers.fetch_add(1, std::memory_order_seq_cst);
    {
        std::unique_lock<std::mutex> lock(mutex_);
        cv.wait(lock, ready);
    }
    sleepers.fetch_sub(1, std::memory_order_relaxed);
}

void ClaimingPool::worker_loop(const std::function<void()>& on_start) {
    if (on_start) on_start();
    t_in_region = true;  // a worker's own loops never start regions
    for (;;) {
        uint64_t word = 0;
        wait_until(sleepers_, work_posted_, [&] {
            word = claims_.load(std::memory_order_seq_cst);
            return Claims::claimable(word) || stopping_.load(std::memory_order_seq_cst);
        });
        if (stopping_.load(std::memory_order_relaxed)) return;
        for (int share = claim(Claims::region(word)); share >= 0;
             share = claim(Claims::region(word)))
            run_share(share);
    }
}

int parallel_threads() {
    return ProcessPool::instance().threads.load(std::memory_order_relaxed);
}
void set_parallel_threads(int threads) {
    ProcessPool& process = ProcessPool::instance();
    process.threads.store(std::clamp(threads, 1, ClaimingPool::kMaxThreads),
                          std::memory_order_relaxed);
}
bool in_parallel() {
    return t_in_region;
}
int processor_count() {
    return cpus_available();
}

namespace detail {
void run_on_pool(int threads, void (*task)(void*, int, int), void* context) {
    if (!g_forked_child.load(std::memory_order_relaxed)) {
        ProcessPool::instance().pool.run(threads, task, context);
        return;
    }
    const int shares = std::clamp(threads, 1, ClaimingPool::kMaxThreads);
    struct InRegion {
        bool was = t_in_region;
        InRegion() { t_in_region = true; }
        ~InRegion() { t_in_region = was; }
    } in_region;
    for (int share = 0; share < shares; ++share) task(context, share, shares);
}
}  // namespace detail

}  // namespace tinygpt
