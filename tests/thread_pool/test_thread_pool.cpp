// util/parallel.h over the engine's thread pool (util/parallel/thread_pool.cpp), on its own
// without the engine: every index exactly once, the static split, the dynamic one, regions that
// do not nest, fewer threads on request, exceptions, and many short regions back to back (the
// forward pass's pattern), a forked child. Then the pool's claiming (util/parallel/claiming_pool.h)
// on pools of the tests' own: the caller takes the shares of a worker that is not there, waits for
// a share a worker has claimed, and loses no wake-up when workers sleep between regions.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <future>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>
#include <vector>

#include "util/parallel.h"
#include "util/parallel/claiming_pool.h"

namespace {

using tinygpt::parallel_threads;

TEST(ThreadPool, HasAThreadPerCoreOrOmpNumThreads) {
    const int cores = tinygpt::processor_count();
    EXPECT_LE(cores, static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
    const char* from_environment = std::getenv("OMP_NUM_THREADS");
    if (from_environment) {  // any count: more shares than cores run on the cores there are
        EXPECT_EQ(parallel_threads(), std::clamp(std::atoi(from_environment), 1, 256));
    } else {
        EXPECT_EQ(parallel_threads(), std::min(cores, 256));
    }
    EXPECT_FALSE(tinygpt::in_parallel());
}

TEST(ThreadPool, ParallelForVisitsEveryIndexOnce) {
    for (long n : {0L, 1L, 2L, 3L, 17L, 1000L, 100003L}) {
        std::vector<std::atomic<int>> seen(static_cast<size_t>(n));
        tinygpt::parallel_for(n, true, [&](long i) { seen[static_cast<size_t>(i)]++; });
        for (long i = 0; i < n; ++i)
            ASSERT_EQ(seen[static_cast<size_t>(i)].load(), 1) << n << " " << i;
    }
}

TEST(ThreadPool, DynamicForVisitsEveryIndexOnce) {
    const long n = 5000;
    std::vector<std::atomic<int>> seen(n);
    tinygpt::parallel_for_dynamic(n, true, [&](long i) { seen[static_cast<size_t>(i)]++; });
    for (long i = 0; i < n; ++i) ASSERT_EQ(seen[static_cast<size_t>(i)].load(), 1) << i;
}

TEST(ThreadPool, RegionRunsEachThreadOnceWithTheStaticSplit) {
    const int threads = parallel_threads();
    std::vector<std::atomic<int>> ran(static_cast<size_t>(threads));
    std::atomic<int> counted{-1};
    tinygpt::parallel_region(threads, [&](int thread, int count) {
        ASSERT_LT(thread, count);
        counted = count;
        ran[static_cast<size_t>(thread)]++;
        EXPECT_TRUE(tinygpt::in_parallel());
    });
    ASSERT_EQ(counted.load(), threads);
    for (int t = 0; t < threads; ++t) EXPECT_EQ(ran[static_cast<size_t>(t)].load(), 1) << t;
    // The shares tile [0, n) in order, the first n % threads one longer.
    long next = 0;
    for (int t = 0; t < 3; ++t) {
        const tinygpt::IndexRange r = tinygpt::static_share(10, t, 3);
        EXPECT_EQ(r.begin, next);
        EXPECT_EQ(r.end - r.begin, t == 0 ? 4 : 3);
        next = r.end;
    }
}

TEST(ThreadPool, NestedLoopsRunOnTheirThread) {
    std::atomic<int> inner_regions{0};
    tinygpt::parallel_region(parallel_threads(), [&](int, int) {
        tinygpt::parallel_region(parallel_threads(), [&](int thread, int count) {
            EXPECT_EQ(thread, 0);
            EXPECT_EQ(count, 1);
            inner_regions++;
        });
        EXPECT_EQ(tinygpt::threads_for_region(true), 1);
    });
    EXPECT_EQ(inner_regions.load(), parallel_threads());
}

TEST(ThreadPool, FewerThreadsOnRequest) {
    const int all = parallel_threads();
    tinygpt::set_parallel_threads(1);
    EXPECT_EQ(parallel_threads(), 1);
    std::atomic<int> count{0};
    tinygpt::parallel_for(1000, true, [&](long) { count++; });
    EXPECT_EQ(count.load(), 1000);
    tinygpt::set_parallel_threads(1000);  // clamped to the pool's limit of shares
    EXPECT_EQ(parallel_threads(), 256);
    tinygpt::set_parallel_threads(all);
}

// More shares than threads: each thread claims several; every share runs once, with its own
// number and the count asked for, as on a machine with that many cores.
TEST(ThreadPool, MoreSharesThanThreads) {
    const int all = parallel_threads();
    for (int shares : {3, 5, 64}) {
        tinygpt::set_parallel_threads(shares);
        std::vector<std::atomic<int>> ran(static_cast<size_t>(shares));
        tinygpt::parallel_region(shares, [&](int share, int count) {
            EXPECT_EQ(count, shares);
            ran[static_cast<size_t>(share)]++;
        });
        for (int t = 0; t < shares; ++t) EXPECT_EQ(ran[static_cast<size_t>(t)].load(), 1) << t;
        std::atomic<long> sum{0};
        tinygpt::parallel_for(1000, true, [&](long i) { sum += i; });
        EXPECT_EQ(sum.load(), 999L * 1000 / 2);
    }
    tinygpt::set_parallel_threads(all);
}

TEST(ThreadPool, AnExceptionOnTheCallingThreadComesOutAfterTheOthersFinish) {
    std::atomic<int> finished{0};
    EXPECT_THROW(tinygpt::parallel_region(parallel_threads(),
                                          [&](int thread, int) {
                                              if (thread == 0) throw std::runtime_error("bad");
                                              finished++;
                                          }),
                 std::runtime_error);
    EXPECT_EQ(finished.load(), parallel_threads() - 1);
    // The pool still works.
    std::atomic<long> sum{0};
    tinygpt::parallel_for(100, true, [&](long i) { sum += i; });
    EXPECT_EQ(sum.load(), 4950);
}

TEST(ThreadPool, ManyShortRegionsBackToBack) {
    std::atomic<long> sum{0};
    for (int region = 0; region < 20000; ++region)
        tinygpt::parallel_for(4, true, [&](long i) { sum += i; });
    EXPECT_EQ(sum.load(), 20000L * 6);
}

// A share that a worker runs throws: the exception comes out on the caller (regions are tried
// until a worker takes a share; the caller running both is the other outcome).
TEST(ThreadPool, AnExceptionOnAWorkersShareComesOutOnTheCaller) {
    if (tinygpt::processor_count() < 2 || parallel_threads() < 2)
        GTEST_SKIP() << "no worker thread";
    const std::thread::id caller = std::this_thread::get_id();
    for (int attempt = 0; attempt < 200; ++attempt) {
        std::atomic<bool> worker_threw{false};
        try {
            tinygpt::parallel_region(2, [&](int, int) {
                if (std::this_thread::get_id() != caller) {
                    worker_threw = true;
                    throw std::runtime_error("from a worker");
                }
                std::this_thread::sleep_for(std::chrono::milliseconds(1));
            });
        } catch (const std::runtime_error& e) {
            EXPECT_STREQ(e.what(), "from a worker");
            EXPECT_TRUE(worker_threw.load());
            return;
        }
        EXPECT_FALSE(worker_threw.load());  // the caller ran both shares: nothing thrown
    }
    FAIL() << "no worker took a share in 200 regions";
}

// A forked child has none of the parent's workers (and a lock one of them held at the fork would
// never be released): its regions run every share on its one thread, and finish.
TEST(ThreadPool, AForkedChildRunsItsRegionsAlone) {
    std::atomic<long> warm{0};
    tinygpt::parallel_for(1000, true, [&](long i) { warm += i; });  // the workers exist
    const pid_t child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
        alarm(20);  // a hang is a failure, not a stuck test
        std::atomic<long> sum{0};
        std::atomic<int> shares{0};
        for (int region = 0; region < 100; ++region)
            tinygpt::parallel_for(1000, true, [&](long i) { sum += i; });
        tinygpt::parallel_region(4, [&](int, int count) {
            if (count == 4) shares++;
        });
        _exit(sum.load() == 100L * 999 * 1000 / 2 && shares.load() == 4 ? 0 : 1);
    }
    int status = 0;
    ASSERT_EQ(waitpid(child, &status, 0), child);
    ASSERT_TRUE(WIFEXITED(status)) << "child killed by signal " << WTERMSIG(status);
    EXPECT_EQ(WEXITSTATUS(status), 0);
    // The parent's pool is untouched.
    std::atomic<long> sum{0};
    tinygpt::parallel_for(1000, true, [&](long i) { sum += i; });
    EXPECT_EQ(sum.load(), 999L * 1000 / 2);
}

// Shares run by the calling thread and by others, per region.
struct ShareLog {
    std::mutex mutex;
    std::vector<std::thread::id> ran_on;
    int shares = 0;
    void record(int share, int count) {
        std::lock_guard<std::mutex> lock(mutex);
        if (ran_on.empty()) ran_on.resize(static_cast<size_t>(count));
        ran_on[static_cast<size_t>(share)] = std::this_thread::get_id();
        ++shares;
    }
};

void run_logged(tinygpt::ClaimingPool& pool, int threads, ShareLog& log) {
    pool.run(
        threads,
        [](void* context, int share, int count) {
            static_cast<ShareLog*>(context)->record(share, count);
        },
        &log);
}

// The property the pool exists for: a region does not wait for a worker that has not claimed a
// share. The worker here is held before it ever looks for work (as a descheduled thread is), and
// every region still completes, on the caller alone.
TEST(ClaimingPool, TheCallerTakesTheSharesOfAWorkerThatIsNotThere) {
    std::promise<void> release;
    std::shared_future<void> released = release.get_future().share();
    tinygpt::ClaimingPool pool(1, [released] { released.wait(); });
    ASSERT_EQ(pool.size(), 2);
    const std::thread::id caller = std::this_thread::get_id();
    for (int region = 0; region < 1000; ++region) {
        ShareLog log;
        run_logged(pool, 2, log);
        ASSERT_EQ(log.shares, 2);
        EXPECT_EQ(log.ran_on[0], caller);
        EXPECT_EQ(log.ran_on[1], caller);
    }
    // Released, the worker takes part: within a few regions whose shares last long enough.
    release.set_value();
    bool worker_took_one = false;
    for (int region = 0; region < 2000 && !worker_took_one; ++region) {
        ShareLog log;
        pool.run(
            2,
            [](void* context, int share, int count) {
                std::this_thread::sleep_for(std::chrono::microseconds(200));
                static_cast<ShareLog*>(context)->record(share, count);
            },
            &log);
        ASSERT_EQ(log.shares, 2);
        worker_took_one = log.ran_on[0] != caller || log.ran_on[1] != caller;
    }
    EXPECT_TRUE(worker_took_one);
}

// A share a worker has claimed is waited for: the region's captures live on the caller's stack.
TEST(ClaimingPool, WaitsForAShareThatAWorkerClaimed) {
    tinygpt::ClaimingPool pool(1);
    const std::thread::id caller = std::this_thread::get_id();
    int waited_for = 0;
    for (int region = 0; region < 200 && waited_for < 3; ++region) {
        std::atomic<bool> worker_done{false};
        struct Context {
            std::thread::id caller;
            std::atomic<bool>* worker_done;
        } context{caller, &worker_done};
        pool.run(
            2,
            [](void* c, int, int) {
                auto* ctx = static_cast<Context*>(c);
                if (std::this_thread::get_id() == ctx->caller) {  // time for the worker to claim
                    std::this_thread::sleep_for(std::chrono::milliseconds(1));
                    return;
                }
                std::this_thread::sleep_for(std::chrono::milliseconds(20));
                ctx->worker_done->store(true);
            },
            &context);
        // Either the caller ran both shares, or it returned after the worker's share finished.
        if (worker_done.load()) ++waited_for;
    }
    EXPECT_GE(waited_for, 3);
}

// Regions separated by pauses long enough that the workers go to sleep, and then close together:
// a lost wake-up would hang here (ctest's timeout), a lost share would break the count.
TEST(ClaimingPool, WorkersThatSleepBetweenRegionsWakeForTheNext) {
    tinygpt::ClaimingPool pool(3);
    std::set<std::thread::id> threads_seen;
    std::mutex mutex;
    for (int region = 0; region < 300; ++region) {
        if (region % 10 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(2));
        std::atomic<int> ran{0};
        struct Context {
            std::atomic<int>* ran;
            std::set<std::thread::id>* seen;
            std::mutex* mutex;
        } context{&ran, &threads_seen, &mutex};
        pool.run(
            4,
            [](void* c, int, int count) {
                auto* ctx = static_cast<Context*>(c);
                EXPECT_EQ(count, 4);
                std::this_thread::sleep_for(std::chrono::microseconds(300));
                std::lock_guard<std::mutex> lock(*ctx->mutex);
                ctx->seen->insert(std::this_thread::get_id());
                ctx->ran->fetch_add(1);
            },
            &context);
        ASSERT_EQ(ran.load(), 4) << region;
    }
    EXPECT_GT(threads_seen.size(), 1u);  // the workers did wake up and take shares
}

// The region number wraps after 2^40 regions: the regions around the wrap run as any other,
// with no worker to claim a share (a caller whose claims named a number the word cannot hold
// would wait forever: ctest's timeout) and with one.
TEST(ClaimingPool, RegionNumbersWrap) {
    for (int workers : {0, 1}) {
        tinygpt::ClaimingPool pool(workers, {}, (uint64_t{1} << 40) - 50);
        for (int region = 0; region < 100; ++region) {
            ShareLog log;
            run_logged(pool, 3, log);
            ASSERT_EQ(log.shares, 3) << workers << " workers, region " << region;
        }
    }
}

TEST(ClaimingPool, StopsWithSleepingWorkers) {
    for (int round = 0; round < 5; ++round) {
        tinygpt::ClaimingPool pool(2);
        std::this_thread::sleep_for(std::chrono::milliseconds(5));  // past the workers' spin
    }  // the destructor wakes and joins them (a hang here is a lost wake-up)
    tinygpt::ClaimingPool none(0);
    EXPECT_EQ(none.size(), 1);
    ShareLog log;
    run_logged(none, 8, log);  // no workers: the caller runs all eight shares
    EXPECT_EQ(log.shares, 8);
    for (const std::thread::id& id : log.ran_on) EXPECT_EQ(id, std::this_thread::get_id());
}

}  // namespace
