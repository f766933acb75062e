// kernels/portable_sgemm (the WebAssembly build's GEMM, which has no BLAS) against a double
// reference, for every transpose combination, shapes that are not multiples of its 4×8 tile
// or 256-deep blocks, leading dimensions wider than the matrices, and alpha/beta cases (beta = 0
// must not read C: NaN there does not survive).
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "kernels/portable_sgemm.h"
#include "util/parallel.h"
#include "util/rng.h"

namespace {

struct SgemmCase {
    bool trans_a, trans_b;
    int m, n, k;
    float alpha, beta;
};

// C = alpha·op(A)·op(B) + beta·C in double, the operands stored with padding columns.
void check_against_double(const SgemmCase& c) {
    const int lda = (c.trans_a ? c.m : c.k) + 3, ldb = (c.trans_b ? c.k : c.n) + 5, ldc = c.n + 2;
    const int a_rows = c.trans_a ? c.k : c.m, b_rows = c.trans_b ? c.n : c.k;
    tinygpt::Rng rng(static_cast<uint64_t>(c.m * 7919 + c.n * 104729 + c.k));
    std::vector<float> a(static_cast<size_t>(a_rows) * lda), b(static_cast<size_t>(b_rows) * ldb),
        out(static_cast<size_t>(c.m) * ldc);
    for (float& v : a) v = rng.uniform() * 2 - 1;
    for (float& v : b) v = rng.uniform() * 2 - 1;
    for (float& v : out)
        v = c.beta == 0.0f ? std::numeric_limits<float>::quiet_NaN() : rng.uniform() * 2 - 1;
    const std::vector<float> before = out;
    tinygpt::portable_sgemm(c.trans_a, c.trans_b, c.m, c.n, c.k, c.alpha, a.data(), lda, b.data(),
                            ldb, c.beta, out.data(), ldc);
    for (int i = 0; i < c.m; ++i)
        for (int j = 0; j < c.n; ++j) {
            double sum = 0, magnitude = 0;
            for (int p = 0; p < c.k; ++p) {
                const double x = c.trans_a ? a[static_cast<size_t>(p) * lda + i]
                                           : a[static_cast<size_t>(i) * lda + p];
                const double y = c.trans_b ? b[static_cast<size_t>(j) * ldb + p]
                                           : b[static_cast<size_t>(p) * ldb + j];
                sum += x * y;
                magnitude += std::abs(x * y);
            }
            const size_t at = static_cast<size_t>(i) * ldc + j;
            const double expected =
                c.alpha * sum + (c.beta == 0.0f ? 0.0 : c.beta * static_cast<double>(before[at]));
            ASSERT_NEAR(out[at], expected, 1e-6 * (std::abs(c.alpha) * magnitude + 1))
                << "trans_a " << c.trans_a << " trans_b " << c.trans_b << " m " << c.m << " n "
                << c.n << " k " << c.k << " at (" << i << ", " << j << ")";
        }
    // The padding columns of C are not written.
    for (int i = 0; i < c.m; ++i)
        for (int j = c.n; j < ldc; ++j) {
            const size_t at = static_cast<size_t>(i) * ldc + j;
            if (c.beta == 0.0f)
                ASSERT_TRUE(std::isnan(out[at]));
            else
                ASSERT_EQ(out[at], before[at]);
        }
}

}  // namespace

TEST(PortableSgemm, MatchesDoubleReferenceForEveryTransposeAndEdgeShape) {
    const int shapes[][3] = {{1, 1, 1},     {3, 17, 5},    {4, 16, 256},
                             {5, 33, 257},  {37, 70, 9},   {64, 515, 300},
                             {2, 1030, 31}, {203, 40, 300}};  // few columns: split by rows too
    for (bool ta : {false, true})
        for (bool tb : {false, true})
            for (const auto& s : shapes)
                check_against_double({ta, tb, s[0], s[1], s[2], 1.0f, 0.0f});
}

TEST(PortableSgemm, ScalesByAlphaAndAccumulatesWithBeta) {
    check_against_double({false, true, 9, 40, 70, 0.5f, 1.0f});
    check_against_double({true, false, 13, 21, 300, -2.0f, 0.25f});
    check_against_double({false, false, 6, 18, 0, 1.0f, 0.5f});  // k = 0: only beta·C
}

// The tiling follows the thread count (narrower column blocks, then row blocks), but every
// element's sum runs over k in the same order: the same bits on any number of threads.
TEST(PortableSgemm, SameBitsOnAnyThreadCount) {
    const int saved = tinygpt::parallel_threads();
    const int shapes[][3] = {{203, 40, 300}, {64, 515, 300}, {130, 1100, 70}, {9, 2000, 600}};
    for (const auto& s : shapes) {
        const int m = s[0], n = s[1], k = s[2];
        tinygpt::Rng rng(static_cast<uint64_t>(m + n + k));
        std::vector<float> a(static_cast<size_t>(m) * k), b(static_cast<size_t>(k) * n);
        for (float& v : a) v = rng.uniform() * 2 - 1;
        for (float& v : b) v = rng.uniform() * 2 - 1;
        std::vector<float> first;
        for (int threads : {1, 2, 3, 5}) {
            tinygpt::set_parallel_threads(threads);
            std::vector<float> c(static_cast<size_t>(m) * n, 0.0f);
            tinygpt::portable_sgemm(false, true, m, n, k, 1.0f, a.data(), k, b.data(), k, 0.0f,
                                    c.data(), n);
            if (first.empty())
                first = c;
            else
                ASSERT_EQ(c, first) << m << "x" << n << "x" << k << " on " << threads << " threads";
        }
    }
    tinygpt::set_parallel_threads(saved);
}
