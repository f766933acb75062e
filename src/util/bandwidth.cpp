#include "util/bandwidth.h"

#include <cstdint>
#include <vector>

#include "util/parallel.h"
#include "util/timer.h"

namespace tinygpt {
namespace {

// Sums words with eight independent chains (enough loads in flight for the memory system; the
// compiler vectorises them). The caller keeps the result so the loads cannot be dropped.
uint64_t sum_words(const uint64_t* p, size_t count) {
    uint64_t lanes[8] = {};
    size_t i = 0;
    for (; i + 8 <= count; i += 8)
        for (int l = 0; l < 8; ++l) lanes[l] += p[i + l];
    for (; i < count; ++i) lanes[0] += p[i];
    uint64_t sum = 0;
    for (uint64_t v : lanes) sum += v;
    return sum;
}

}  // namespace

double measure_read_bandwidth_gbs(size_t bytes, int threads, int runs) {
    const size_t words = bytes / sizeof(uint64_t);
    if (words == 0 || threads < 1) return 0.0;
    std::vector<uint64_t> buffer(words);
    // Written by the threads that read it (first touch places pages near them).
    parallel_region(threads, [&](int thread, int count) {
        const IndexRange share = static_share(static_cast<long>(words), thread, count);
        for (long i = share.begin; i < share.end; ++i) buffer[i] = static_cast<uint64_t>(i);
    });
    double best = 0.0;
    volatile uint64_t sink = 0;
    for (int run = 0; run < runs; ++run) {
        std::vector<uint64_t> sums(static_cast<size_t>(threads), 0);
        Timer timer;
        parallel_region(threads, [&](int thread, int count) {
            const IndexRange share = static_share(static_cast<long>(words), thread, count);
            sums[thread] = sum_words(buffer.data() + share.begin,
                                     static_cast<size_t>(share.end - share.begin));
        });
        uint64_t total = 0;
        for (uint64_t s : sums) total += s;
        const double seconds = timer.seconds();
        sink = sink + total;
        const double gbs = static_cast<double>(words * sizeof(uint64_t)) / seconds / 1e9;
        if (gbs > best) best = gbs;
    }
    return best;
}

}  // namespace tinygpt
