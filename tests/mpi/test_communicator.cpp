// The collectives of src/dist/communicator.h on the real MPI world (2 ranks under ctest).
#include <gtest/gtest.h>

#include <numeric>
#include <vector>

#include "dist/communicator.h"

namespace tinygpt {
namespace {

TEST(Communicator, AllreduceSumsOverRanks) {
    Communicator& w = world();
    std::vector<float> f = {1.0f + w.rank(), 2.0f};
    std::vector<double> d = {0.5 * (w.rank() + 1)};
    std::vector<int64_t> i = {int64_t{1} << 40, w.rank()};
    w.allreduce_sum(f.data(), f.size());
    w.allreduce_sum(d.data(), d.size());
    w.allreduce_sum(i.data(), i.size());
    const int n = w.size();
    EXPECT_FLOAT_EQ(f[0], n * (n + 1) / 2.0f);
    EXPECT_FLOAT_EQ(f[1], 2.0f * n);
    EXPECT_DOUBLE_EQ(d[0], 0.5 * n * (n + 1) / 2.0);
    EXPECT_EQ(i[0], (int64_t{1} << 40) * n);
    EXPECT_EQ(i[1], int64_t{n} * (n - 1) / 2);
    int64_t m = 10 * w.rank();
    w.allreduce_max(&m, 1);
    EXPECT_EQ(m, 10 * (n - 1));
}

TEST(Communicator, AlltoallvDeliversEachRanksRows) {
    Communicator& w = world();
    const int n = w.size(), r = w.rank();
    // Rank r sends q + 1 values to rank q, each encoding (from, to, index).
    std::vector<int64_t> send_counts(n), recv_counts(n);
    std::vector<float> send;
    for (int q = 0; q < n; ++q) {
        send_counts[q] = q + 1;
        for (int k = 0; k <= q; ++k) send.push_back(100.0f * r + 10.0f * q + k);
    }
    std::vector<int64_t> counts_seen(n);
    w.alltoall(send_counts.data(), counts_seen.data(), 1);
    for (int q = 0; q < n; ++q) recv_counts[q] = r + 1;
    EXPECT_EQ(counts_seen, recv_counts);
    std::vector<float> recv(static_cast<size_t>(n) * (r + 1));
    w.alltoallv(send.data(), send_counts.data(), recv.data(), recv_counts.data());
    for (int q = 0; q < n; ++q)
        for (int k = 0; k <= r; ++k) EXPECT_EQ(recv[q * (r + 1) + k], 100.0f * q + 10.0f * r + k);
}

TEST(Communicator, BroadcastSendReceiveAndSplit) {
    Communicator& w = world();
    std::vector<char> bytes(1000, static_cast<char>(w.rank()));
    if (w.rank() == 0) std::iota(bytes.begin(), bytes.end(), 0);
    w.broadcast(bytes.data(), bytes.size(), 0);
    for (size_t i = 0; i < bytes.size(); ++i) ASSERT_EQ(bytes[i], static_cast<char>(i));
    if (w.size() > 1) {
        if (w.rank() == 1) {
            const double v = 3.25;
            w.send(&v, sizeof v, 0);
        } else if (w.rank() == 0) {
            double v = 0;
            w.receive(&v, sizeof v, 1);
            EXPECT_EQ(v, 3.25);
        }
    }
    // One communicator per rank: each is a world of one.
    auto alone = w.split(w.rank(), 0);
    EXPECT_EQ(alone->size(), 1);
    EXPECT_EQ(alone->rank(), 0);
    float x = 2.0f;
    alone->allreduce_sum(&x, 1);
    EXPECT_EQ(x, 2.0f);
    w.barrier();
}

}  // namespace
}  // namespace tinygpt
