// util/parallel.h over the browser's thread pool (util/parallel/thread_pool.cpp), compiled
// natively with std::thread: every index exactly once, the static split, the dynamic one,
// regions that do not nest, fewer threads on request, an exception from the calling thread's
// share, and many short regions back to back (the forward pass's pattern). The engine's other
// tests run over OpenMP natively and over this pool only in the browser builds (tools/web-check).
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <stdexcept>
#include <thread>
#include <vector>

#include "util/parallel.h"

namespace {

using tinygpt::parallel_threads;

TEST(ThreadPool, HasAThreadPerCoreUpToSixteen) {
    const int cores = static_cast<int>(std::thread::hardware_concurrency());
    EXPECT_EQ(parallel_threads(), std::clamp(cores, 1, 16));
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
    tinygpt::set_parallel_threads(1000);  // clamped to the pool
    EXPECT_EQ(parallel_threads(), all);
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

}  // namespace
