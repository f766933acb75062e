// The thread pool behind util/parallel.h (thread_pool.cpp holds the process's one instance): a
// region's shares go to whichever thread claims them first, the calling thread included, and
// the caller waits only for shares another thread has claimed. So a worker that the kernel has
// not run, or that is still waking up, costs a region its help, not a wait (a share that a worker
// is descheduled in the middle of is still waited for). On a machine whose cores other processes
// keep busy, a fork/join whose second half belonged to a descheduled thread waited a whole time
// slice (OpenMP's regions, which end only when every thread of the team has arrived;
// BENCHMARKS.md, "Decode on a shared machine: the engine's own pool").
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace tinygpt {

class ClaimingPool {
  public:
    // At most this many threads, the caller included, and shares per region (the share
    // count's field in the claims word has room for more).
    static constexpr int kMaxThreads = 256;

    // Starts `workers` threads (fewer if the system refuses more). Each runs `on_start`, if
    // given, before it takes part in any region (the tests hold workers there). Regions are
    // numbered from `regions_before` + 1, wrapping at 2^40 (the tests start near the wrap).
    explicit ClaimingPool(int workers, std::function<void()> on_start = {},
                          uint64_t regions_before = 0);
    ~ClaimingPool();  // waits for the workers to finish their region and stop
    ClaimingPool(const ClaimingPool&) = delete;
    ClaimingPool& operator=(const ClaimingPool&) = delete;

    int size() const { return static_cast<int>(workers_.size()) + 1; }

    // Runs task(context, share, shares) once for each share in [0, shares), shares = `threads`
    // (at most kMaxThreads), and returns when all have finished; the first exception a share
    // throws comes out here, after the others have finished. More shares than threads is fine:
    // each thread claims as many as it gets to, and the shares (so the bits of a result split by
    // share) are those of a machine with that many cores. Regions from two threads take turns.
    void run(int threads, void (*task)(void*, int, int), void* context);

  private:
    int claim(uint64_t region);
    void run_share(int share);
    template <typename Ready>
    void wait_until(std::atomic<int>& sleepers, std::condition_variable& cv, Ready ready);
    void worker_loop(const std::function<void()>& on_start);

    std::vector<std::thread> workers_;
    std::mutex run_mutex_;  // one region at a time
    std::mutex mutex_;
    std::condition_variable work_posted_, region_done_;
    std::atomic<int> sleepers_{0}, caller_sleeping_{0};
    // The region's number (40 bits: a stale claim of an earlier region can never succeed), its
    // share count and the next unclaimed share, in one word that every claim goes through.
    std::atomic<uint64_t> claims_{0};
    std::atomic<int> unfinished_{0};
    std::atomic<bool> stopping_{false};
    uint64_t region_ = 0;  // regions started (under run_mutex_)
    // Written by run() before the claims word's store, read by whoever holds a claim.
    void (*task_)(void*, int, int) = nullptr;
    void* context_ = nullptr;
    std::exception_ptr error_;  // the first exception of a share (under mutex_)
};

}  // namespace tinygpt
