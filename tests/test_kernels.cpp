// Each kernel's forward against a naive double-precision reference, and its backward against
// central finite differences.
#include <gtest/gtest.h>

#include <cmath>

#include "kernels/attention.h"
#include "kernels/cross_entropy.h"
#include "kernels/embedding.h"
#include "kernels/gelu.h"
#include "kernels/gemm.h"
#include "kernels/gemv.h"
#include "kernels/layernorm.h"
#include "kernels/mlp.h"
#include "test_util.h"
#include "util/sysinfo.h"

namespace tinygpt {
namespace {

using test::expect_gradient_matches;
using test::max_abs_diff;
using test::random_vector;
using test::weighted_sum;

TEST(Gemm, AllTransposesMatchNaive) {
    for (int m : {37, 1}) {  // m = 1 takes the matrix-vector path
        const int n = 29, k = 45;
        for (bool ta : {false, true}) {
            for (bool tb : {false, true}) {
                auto a = random_vector(static_cast<size_t>(m) * k, 1),
                     b = random_vector(static_cast<size_t>(k) * n, 2);
                auto c = random_vector(static_cast<size_t>(m) * n, 3);
                std::vector<double> ref(c.size());
                for (int i = 0; i < m; ++i)
                    for (int j = 0; j < n; ++j) {
                        double s = 0;
                        for (int p = 0; p < k; ++p)
                            s += static_cast<double>(ta ? a[p * m + i] : a[i * k + p]) *
                                 (tb ? b[j * k + p] : b[p * n + j]);
                        ref[i * n + j] = 0.5 * s + 2.0 * c[i * n + j];
                    }
                gemm(ta, tb, m, n, k, 0.5f, a.data(), ta ? m : k, b.data(), tb ? k : n, 2.0f,
                     c.data(), n);
                for (size_t i = 0; i < c.size(); ++i)
                    EXPECT_NEAR(c[i], ref[i], 1e-4) << ta << tb << i;
            }
        }
    }
}

// Products large enough to be split over the threads (one BLAS call per block of C's columns,
// or rows when C is taller than wide): every transpose, row strides wider than the matrices,
// sizes that leave uneven and partial blocks, alpha and beta, on 1-3 threads, against a double
// reference.
TEST(Gemm, ProductsSplitOverThreadsMatchNaive) {
    const int all_threads = num_threads();
    struct Shape {
        int m, n, k;
    };
    for (const Shape& s : {Shape{70, 301, 41}, Shape{301, 53, 40}, Shape{33, 2000, 9}}) {
        for (bool ta : {false, true}) {
            for (bool tb : {false, true}) {
                const int lda = (ta ? s.m : s.k) + 3, ldb = (tb ? s.k : s.n) + 5, ldc = s.n + 7;
                const auto a = random_vector(static_cast<size_t>(ta ? s.k : s.m) * lda, 21);
                const auto b = random_vector(static_cast<size_t>(tb ? s.n : s.k) * ldb, 22);
                const auto c0 = random_vector(static_cast<size_t>(s.m) * ldc, 23);
                // 0.5 · op(A)·op(B) + 2 · C in double; the stride's padding is left as it was.
                std::vector<double> ref(c0.begin(), c0.end());
                for (int i = 0; i < s.m; ++i)
                    for (int j = 0; j < s.n; ++j) {
                        double sum = 0;
                        for (int p = 0; p < s.k; ++p)
                            sum += static_cast<double>(ta ? a[static_cast<size_t>(p) * lda + i]
                                                          : a[static_cast<size_t>(i) * lda + p]) *
                                   (tb ? b[static_cast<size_t>(j) * ldb + p]
                                       : b[static_cast<size_t>(p) * ldb + j]);
                        double& r = ref[static_cast<size_t>(i) * ldc + j];
                        r = 0.5 * sum + 2.0 * r;
                    }
                for (int threads : {1, 2, 3}) {
                    set_num_threads(threads);
                    auto c = c0;
                    gemm(ta, tb, s.m, s.n, s.k, 0.5f, a.data(), lda, b.data(), ldb, 2.0f, c.data(),
                         ldc);
                    for (size_t at = 0; at < c.size(); ++at)
                        ASSERT_NEAR(c[at], ref[at], 1e-4 * (1 + std::fabs(ref[at])))
                            << s.m << "x" << s.n << "x" << s.k << " ta " << ta << " tb " << tb
                            << ", " << threads << " threads, C[" << at / ldc << "," << at % ldc
                            << "]";
                }
            }
        }
    }
    set_num_threads(all_threads);
}

// The decode kernels: odd sizes (tails of the 4-row groups, the 16 lanes and the chunks), row
// strides, alpha and beta, against a double reference; and the same bits on any thread count.
TEST(Gemv, RowsAndColumnsMatchNaiveAndDoNotDependOnThreads) {
    const int all_threads = num_threads();
    for (auto [n, k] : {std::pair{1, 1}, {3, 15}, {37, 17}, {70, 100}, {700, 300}}) {
        const int ld = k + 3;
        const auto w = random_vector(static_cast<size_t>(std::max(n, k)) * (ld + n), 1);
        const auto x = random_vector(static_cast<size_t>(std::max(n, k)), 2);
        const auto y0 = random_vector(static_cast<size_t>(n), 3);
        for (bool rows : {true, false}) {
            // rows: y = 0.5·W[n,k]·x + 2·y;  columns: y = 0.5·x·W[k,n] + 2·y (stride ld ≥ n).
            const int ldw = rows ? ld : n + 5;
            std::vector<float> first;
            for (int threads : {1, 2, 3}) {
                set_num_threads(threads);
                std::vector<float> y = y0;
                if (rows)
                    gemv_rows(y.data(), w.data(), ldw, x.data(), n, k, 0.5f, 2.0f);
                else
                    gemv_columns(y.data(), x.data(), w.data(), ldw, k, n, 0.5f, 2.0f);
                for (int j = 0; j < n; ++j) {
                    double s = 0;
                    for (int i = 0; i < k; ++i)
                        s += static_cast<double>(x[i]) *
                             (rows ? w[static_cast<size_t>(j) * ldw + i]
                                   : w[static_cast<size_t>(i) * ldw + j]);
                    ASSERT_NEAR(y[j], 0.5 * s + 2.0 * y0[j], 1e-4 * (1 + std::fabs(s)))
                        << (rows ? "rows " : "columns ") << n << "x" << k << " output " << j;
                }
                if (first.empty()) first = y;
                for (int j = 0; j < n; ++j)
                    ASSERT_EQ(y[j], first[j]) << threads << " threads, output " << j;
            }
            // beta = 0 never reads y (which may hold garbage, e.g. NaN).
            std::vector<float> y(n, std::nanf(""));
            if (rows)
                gemv_rows(y.data(), w.data(), ldw, x.data(), n, k, 1.0f, 0.0f);
            else
                gemv_columns(y.data(), x.data(), w.data(), ldw, k, n, 1.0f, 0.0f);
            for (float v : y) ASSERT_TRUE(std::isfinite(v));
        }
    }
    set_num_threads(all_threads);
}

TEST(Linear, BackwardMatchesFiniteDifferences) {
    const int rows = 6, in = 9, out = 7;
    auto x = random_vector(rows * in, 4), w = random_vector(out * in, 5), b = random_vector(out, 6);
    const auto r = random_vector(rows * out, 7);
    std::vector<float> y(rows * out);
    auto loss = [&] {
        linear_forward(y.data(), x.data(), w.data(), b.data(), rows, in, out);
        return weighted_sum(y.data(), r);
    };
    std::vector<float> dx(x.size()), dw(w.size(), 0.0f), db(b.size(), 0.0f);
    linear_backward(dx.data(), dw.data(), db.data(), r.data(), x.data(), w.data(), rows, in, out);
    expect_gradient_matches("dx", x, dx, loss);
    expect_gradient_matches("dw", w, dw, loss);
    expect_gradient_matches("db", b, db, loss);
}

TEST(LayerNorm, ForwardMatchesNaiveAndBackwardMatchesFiniteDifferences) {
    const int rows = 5, C = 24;
    auto x = random_vector(rows * C, 8, 2.0f), w = random_vector(C, 9), b = random_vector(C, 10);
    std::vector<float> y(rows * C), mean(rows), rstd(rows);
    layernorm_forward(y.data(), mean.data(), rstd.data(), x.data(), w.data(), b.data(), rows, C);
    for (int r = 0; r < rows; ++r) {
        double mu = 0, var = 0;
        for (int c = 0; c < C; ++c) mu += x[r * C + c];
        mu /= C;
        for (int c = 0; c < C; ++c) var += (x[r * C + c] - mu) * (x[r * C + c] - mu);
        var /= C;
        for (int c = 0; c < C; ++c)
            EXPECT_NEAR(y[r * C + c], (x[r * C + c] - mu) / std::sqrt(var + 1e-5) * w[c] + b[c],
                        1e-5);
    }
    const auto g = random_vector(rows * C, 11);
    auto loss = [&] {
        layernorm_forward(y.data(), mean.data(), rstd.data(), x.data(), w.data(), b.data(), rows,
                          C);
        return weighted_sum(y.data(), g);
    };
    loss();
    std::vector<float> dx(x.size(), 0.0f), dw(C, 0.0f), db(C, 0.0f);
    layernorm_backward(dx.data(), dw.data(), db.data(), g.data(), x.data(), mean.data(),
                       rstd.data(), w.data(), rows, C);
    expect_gradient_matches("dx", x, dx, loss);
    expect_gradient_matches("dw", w, dw, loss);
    expect_gradient_matches("db", b, db, loss);
}

TEST(Gelu, BiasedExactErfFormAndDerivative) {
    const int rows = 40, cols = 9;  // 40 rows span two row blocks of the fused kernel
    auto x = random_vector(rows * cols, 12, 3.0f), bias = random_vector(cols, 13);
    std::vector<float> pre(x), y(x.size());
    bias_gelu_forward(y.data(), pre.data(), bias.data(), rows, cols);
    for (int i = 0; i < rows * cols; ++i) {
        const double z = static_cast<double>(x[i]) + bias[i % cols];
        EXPECT_NEAR(pre[i], z, 1e-6);
        EXPECT_NEAR(y[i], 0.5 * z * (1.0 + std::erf(z / std::sqrt(2.0))),
                    2e-6 * (1 + std::fabs(z)));
    }
    const auto g = random_vector(x.size(), 14);
    std::vector<float> dx(g), dbias(cols, 0.0f);
    bias_gelu_backward(dx.data(), pre.data(), dbias.data(), rows, cols);
    auto loss = [&] {
        pre = x;
        bias_gelu_forward(y.data(), pre.data(), bias.data(), rows, cols);
        return weighted_sum(y.data(), g);
    };
    expect_gradient_matches("dx", x, dx, loss, 1e-2, 1e-3f, 360);
    expect_gradient_matches("dbias", bias, dbias, loss, 1e-2, 1e-3f);
}

// Causal attention in double precision, straight from the definition.
std::vector<double> naive_attention(const std::vector<float>& qkv, AttentionShape s) {
    const int T = s.T, C = s.Q, hd = s.head_dim();
    std::vector<double> out(static_cast<size_t>(s.B) * T * C, 0.0);
    for (int b = 0; b < s.B; ++b)
        for (int h = 0; h < s.H; ++h)
            for (int i = 0; i < T; ++i) {
                std::vector<double> p(i + 1);
                double max = -1e300, sum = 0;
                for (int j = 0; j <= i; ++j) {
                    double dot = 0;
                    for (int d = 0; d < hd; ++d)
                        dot += static_cast<double>(qkv[(b * T + i) * 3 * C + h * hd + d]) *
                               qkv[(b * T + j) * 3 * C + C + h * hd + d];
                    p[j] = dot / std::sqrt(static_cast<double>(hd));
                    max = std::max(max, p[j]);
                }
                for (int j = 0; j <= i; ++j) sum += (p[j] = std::exp(p[j] - max));
                for (int j = 0; j <= i; ++j)
                    for (int d = 0; d < hd; ++d)
                        out[(b * T + i) * C + h * hd + d] +=
                            p[j] / sum * qkv[(b * T + j) * 3 * C + 2 * C + h * hd + d];
            }
    return out;
}

TEST(Attention, CausalForwardMatchesNaive) {
    // T = 70 spans two row blocks of the blocked kernel, the second one partial.
    const AttentionShape s{2, 70, 16, 2};
    auto qkv = random_vector(static_cast<size_t>(s.B) * s.T * 3 * s.Q, 14);
    std::vector<float> out(static_cast<size_t>(s.B) * s.T * s.Q),
        probs(static_cast<size_t>(s.B) * s.H * s.T * s.T);
    attention_forward(out.data(), probs.data(), qkv.data(), s);
    const auto ref = naive_attention(qkv, s);
    for (size_t i = 0; i < out.size(); ++i) ASSERT_NEAR(out[i], ref[i], 1e-5) << i;
    // Causality: nothing above the diagonal.
    for (int i = 0; i < s.T; ++i)
        for (int j = i + 1; j < s.T; ++j) ASSERT_EQ(probs[static_cast<size_t>(i) * s.T + j], 0.0f);
}

TEST(Attention, BackwardMatchesFiniteDifferences) {
    const AttentionShape s{2, 67, 8, 2};
    auto qkv = random_vector(static_cast<size_t>(s.B) * s.T * 3 * s.Q, 15);
    const auto g = random_vector(static_cast<size_t>(s.B) * s.T * s.Q, 16);
    std::vector<float> out(g.size()), probs(static_cast<size_t>(s.B) * s.H * s.T * s.T);
    auto loss = [&] {
        attention_forward(out.data(), probs.data(), qkv.data(), s);
        return weighted_sum(out.data(), g);
    };
    loss();
    std::vector<float> dqkv(qkv.size());
    attention_backward(dqkv.data(), g.data(), qkv.data(), probs.data(), s);
    expect_gradient_matches("dqkv", qkv, dqkv, loss, 2e-2, 1e-2f, 300);
}

TEST(CrossEntropy, ForwardMatchesNaiveAndBackwardMatchesFiniteDifferences) {
    const int rows = 4, V = 11;
    auto logits = random_vector(rows * V, 17, 3.0f);
    const std::vector<int> targets = {3, 0, 10, 7};
    std::vector<float> probs(logits.size()), losses(rows);
    auto loss = [&] {
        softmax_cross_entropy_forward(probs.data(), losses.data(), logits.data(), targets.data(),
                                      rows, V);
        double s = 0;
        for (float l : losses) s += l;
        return s / rows;
    };
    loss();
    for (int r = 0; r < rows; ++r) {
        double lse = 0;
        for (int v = 0; v < V; ++v) lse += std::exp(static_cast<double>(logits[r * V + v]));
        EXPECT_NEAR(losses[r], std::log(lse) - logits[r * V + targets[r]], 1e-5);
    }
    std::vector<float> d(logits.size());
    softmax_cross_entropy_backward(d.data(), probs.data(), targets.data(), rows, V, 1.0f / rows);
    expect_gradient_matches("dlogits", logits, d, loss, 1e-2, 1e-3f);
}

TEST(Embedding, ForwardAndBackward) {
    const int B = 2, T = 3, C = 4, V = 5;
    auto wte = random_vector(V * C, 18), wpe = random_vector(T * C, 19);
    const std::vector<int> tokens = {1, 4, 1, 0, 1, 2};
    const auto g = random_vector(B * T * C, 20);
    std::vector<float> out(B * T * C);
    auto loss = [&] {
        embedding_forward(out.data(), tokens.data(), wte.data(), wpe.data(), B, T, C);
        return weighted_sum(out.data(), g);
    };
    loss();
    EXPECT_FLOAT_EQ(out[(1 * T + 2) * C + 3], wte[2 * C + 3] + wpe[2 * C + 3]);
    std::vector<float> dwte(wte.size(), 0.0f), dwpe(wpe.size(), 0.0f);
    embedding_backward(dwte.data(), dwpe.data(), g.data(), tokens.data(), B, T, C);
    expect_gradient_matches("dwte", wte, dwte, loss);
    expect_gradient_matches("dwpe", wpe, dwpe, loss);
}

TEST(Mlp, BackwardMatchesFiniteDifferences) {
    const int rows = 5, C = 6, M = 10;
    auto x = random_vector(rows * C, 21), w_in = random_vector(M * C, 22, 0.5f),
         b_in = random_vector(M, 23, 0.5f);
    auto w_out = random_vector(C * M, 24, 0.5f), b_out = random_vector(C, 25);
    const auto g = random_vector(rows * C, 26);
    std::vector<float> y(rows * C), h_pre(rows * M), h(rows * M), dh(rows * M), dx(x.size());
    auto loss = [&] {
        mlp_forward(y.data(), h_pre.data(), h.data(), x.data(),
                    {w_in.data(), b_in.data(), w_out.data(), b_out.data()}, rows, C, M);
        return weighted_sum(y.data(), g);
    };
    loss();
    std::vector<float> dw_in(w_in.size(), 0.0f), db_in(M, 0.0f), dw_out(w_out.size(), 0.0f),
        db_out(C, 0.0f);
    mlp_backward(dx.data(), {dw_in.data(), db_in.data(), dw_out.data(), db_out.data()}, dh.data(),
                 g.data(), x.data(), h_pre.data(), h.data(),
                 {w_in.data(), b_in.data(), w_out.data(), b_out.data()}, rows, C, M);
    expect_gradient_matches("dx", x, dx, loss);
    expect_gradient_matches("dw_in", w_in, dw_in, loss);
    expect_gradient_matches("db_in", b_in, db_in, loss);
    expect_gradient_matches("dw_out", w_out, dw_out, loss);
    expect_gradient_matches("db_out", b_out, db_out, loss);
}

}  // namespace
}  // namespace tinygpt
