// The Llama-family kernels (RMSNorm, RoPE, SwiGLU, grouped-query attention): each forward against
// a naive double-precision reference, each backward against central finite differences.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "kernels/attention.h"
#include "kernels/rmsnorm.h"
#include "kernels/rope.h"
#include "kernels/swiglu.h"
#include "test_util.h"
#include "util/error.h"

namespace tinygpt {
namespace {

using test::expect_gradient_matches;
using test::max_abs_diff;
using test::random_vector;
using test::weighted_sum;

constexpr float kEps = 1e-6f;

double naive_rms_scale(const float* x, int n, double eps) {
    double ss = 0;
    for (int c = 0; c < n; ++c) ss += static_cast<double>(x[c]) * x[c];
    return 1.0 / std::sqrt(ss / n + eps);
}

TEST(RmsNorm, ForwardMatchesNaiveAndBackwardAccumulates) {
    const int rows = 70, C = 16;  // 70 rows take the parallel path
    auto x = random_vector(rows * C, 101, 2.0f), w = random_vector(C, 102);
    std::vector<float> y(rows * C), rstd(rows);
    rmsnorm_forward(y.data(), rstd.data(), x.data(), w.data(), rows, C, kEps);
    for (int r = 0; r < rows; ++r) {
        const double s = naive_rms_scale(&x[r * C], C, kEps);
        EXPECT_NEAR(rstd[r], s, 1e-5 * s);
        for (int c = 0; c < C; ++c) EXPECT_NEAR(y[r * C + c], x[r * C + c] * s * w[c], 1e-5);
    }
    const auto g = random_vector(rows * C, 103);
    auto loss = [&] {
        rmsnorm_forward(y.data(), rstd.data(), x.data(), w.data(), rows, C, kEps);
        return weighted_sum(y.data(), g);
    };
    loss();
    // Both gradients accumulate: start from nonzero values and check the increments.
    const auto dx0 = random_vector(x.size(), 104), dw0 = random_vector(C, 105);
    std::vector<float> dx(dx0), dw(dw0);
    rmsnorm_backward(dx.data(), dw.data(), g.data(), x.data(), rstd.data(), w.data(), rows, C);
    for (size_t i = 0; i < dx.size(); ++i) dx[i] -= dx0[i];
    for (int c = 0; c < C; ++c) dw[c] -= dw0[c];
    expect_gradient_matches("dx", x, dx, loss);
    expect_gradient_matches("dw", w, dw, loss);
}

TEST(RmsNorm, HeadFormStridedAndInPlace) {
    // Three heads of 8 inside rows of 29 (like q inside a qkv row); the 5 extra floats stay put.
    const int tokens = 5, heads = 3, hd = 8, ld = heads * hd + 5;
    const size_t n = static_cast<size_t>(tokens) * ld;
    auto x = random_vector(n, 111, 2.0f), w = random_vector(hd, 112);
    std::vector<float> y(n, 0.0f), rstd(tokens * heads);
    head_rmsnorm_forward(y.data(), rstd.data(), x.data(), w.data(), tokens, heads, hd, ld, kEps);
    for (int t = 0; t < tokens; ++t) {
        for (int h = 0; h < heads; ++h) {
            const size_t o = static_cast<size_t>(t) * ld + h * hd;
            const double s = naive_rms_scale(&x[o], hd, kEps);
            EXPECT_NEAR(rstd[t * heads + h], s, 1e-5 * s);
            for (int c = 0; c < hd; ++c) EXPECT_NEAR(y[o + c], x[o + c] * s * w[c], 1e-5);
        }
        for (int c = heads * hd; c < ld; ++c) EXPECT_EQ(y[static_cast<size_t>(t) * ld + c], 0.0f);
    }
    // In place (out == x) gives the same values and leaves the rest of the row alone.
    std::vector<float> in_place(x), rstd2(rstd.size());
    head_rmsnorm_forward(in_place.data(), rstd2.data(), in_place.data(), w.data(), tokens, heads,
                         hd, ld, kEps);
    for (int t = 0; t < tokens; ++t)
        for (int c = 0; c < ld; ++c) {
            const size_t i = static_cast<size_t>(t) * ld + c;
            EXPECT_EQ(in_place[i], c < heads * hd ? y[i] : x[i]);
        }

    // The loss ignores the untouched columns, so their gradient is 0 on both sides.
    auto g = random_vector(n, 113);
    for (int t = 0; t < tokens; ++t)
        for (int c = heads * hd; c < ld; ++c) g[static_cast<size_t>(t) * ld + c] = 0.0f;
    auto loss = [&] {
        head_rmsnorm_forward(y.data(), rstd.data(), x.data(), w.data(), tokens, heads, hd, ld,
                             kEps);
        return weighted_sum(y.data(), g);
    };
    loss();
    std::vector<float> dx(n, 123.0f), dw(hd, 0.0f);  // dx is overwritten
    head_rmsnorm_backward(dx.data(), dw.data(), g.data(), x.data(), rstd.data(), w.data(), tokens,
                          heads, hd, ld);
    for (int t = 0; t < tokens; ++t)
        for (int c = heads * hd; c < ld; ++c) dx[static_cast<size_t>(t) * ld + c] = 0.0f;
    expect_gradient_matches("dx", x, dx, loss);
    expect_gradient_matches("dw", w, dw, loss);

    // dx == dout: the same gradient, in place; d_weight accumulates.
    std::vector<float> d_in_place(g), dw2(hd, 1.0f);
    head_rmsnorm_backward(d_in_place.data(), dw2.data(), d_in_place.data(), x.data(), rstd.data(),
                          w.data(), tokens, heads, hd, ld);
    EXPECT_LT(max_abs_diff(d_in_place.data(), dx.data(), n), 1e-6);
    for (int c = 0; c < hd; ++c) EXPECT_NEAR(dw2[c], dw[c] + 1.0f, 1e-5);
}

TEST(Rope, OddHeadDimensionIsRejected) {
    EXPECT_THROW(RopeTable(8, 7, 10000.0f), Error);
    EXPECT_NO_THROW(RopeTable(8, 6, 10000.0f));
}

TEST(Rope, ForwardMatchesRotateHalfAndBackwardIsItsInverse) {
    // Heads inside wider rows (ld > heads·hd), two sequences, positions from pos0 = 3.
    const int B = 2, T = 5, heads = 3, hd = 8, ld = heads * hd + 6, pos0 = 3;
    const float theta = 100.0f;  // small θ: the slow frequencies still turn visibly
    const RopeTable table(pos0 + T, hd, theta);
    ASSERT_EQ(table.head_dim(), hd);
    ASSERT_EQ(table.max_positions(), pos0 + T);
    const size_t n = static_cast<size_t>(B) * T * ld;
    auto x = random_vector(n, 121);
    std::vector<float> y(x);
    rope_forward(y.data(), ld, B, T, heads, pos0, table);
    const int half = hd / 2;
    for (int b = 0; b < B; ++b)
        for (int t = 0; t < T; ++t) {
            const size_t row = static_cast<size_t>(b * T + t) * ld;
            for (int h = 0; h < heads; ++h)
                for (int i = 0; i < half; ++i) {
                    // HF: inv_freq = 1/θ^(2i/hd), out = x·cos + rotate_half(x)·sin.
                    const double inv_freq = 1.0 / std::pow(double{theta}, 2.0 * i / hd);
                    const double a = (pos0 + t) * inv_freq, c = std::cos(a), s = std::sin(a);
                    const size_t lo = row + h * hd + i, hi = lo + half;
                    EXPECT_NEAR(y[lo], x[lo] * c - x[hi] * s, 1e-5);
                    EXPECT_NEAR(y[hi], x[hi] * c + x[lo] * s, 1e-5);
                }
            for (int c = heads * hd; c < ld; ++c) EXPECT_EQ(y[row + c], x[row + c]);
        }

    // Backward by finite differences; the untouched columns get no gradient (g = 0 there), so
    // both sides are 0 on them.
    auto g = random_vector(n, 122);
    for (int r = 0; r < B * T; ++r)
        for (int c = heads * hd; c < ld; ++c) g[static_cast<size_t>(r) * ld + c] = 0.0f;
    auto loss = [&] {
        y = x;
        rope_forward(y.data(), ld, B, T, heads, pos0, table);
        return weighted_sum(y.data(), g);
    };
    std::vector<float> dx(g);
    rope_backward(dx.data(), ld, B, T, heads, pos0, table);
    expect_gradient_matches("dx", x, dx, loss, 1e-2, 1e-2f, 300);

    // A rotation's inverse is its transpose: forward then backward gives x back.
    std::vector<float> round_trip(x);
    rope_forward(round_trip.data(), ld, B, T, heads, pos0, table);
    rope_backward(round_trip.data(), ld, B, T, heads, pos0, table);
    EXPECT_LT(max_abs_diff(round_trip.data(), x.data(), n), 1e-5);
}

double naive_silu(double g) {
    return g / (1.0 + std::exp(-g));
}

TEST(SwiGlu, ActivationMatchesNaiveAndBackwardMatchesFiniteDifferences) {
    const int rows = 40, M = 7;  // 40 rows span two row blocks
    auto gu = random_vector(static_cast<size_t>(rows) * 2 * M, 131, 3.0f);
    std::vector<float> h(static_cast<size_t>(rows) * M);
    swiglu_forward(h.data(), gu.data(), rows, M);
    for (int r = 0; r < rows; ++r)
        for (int j = 0; j < M; ++j) {
            const double g = gu[r * 2 * M + j], u = gu[r * 2 * M + M + j];
            const double ref = naive_silu(g) * u;
            EXPECT_NEAR(h[r * M + j], ref, 1e-6 * (1 + std::fabs(ref)));
        }
    const auto dh = random_vector(h.size(), 132);
    auto loss = [&] {
        swiglu_forward(h.data(), gu.data(), rows, M);
        return weighted_sum(h.data(), dh);
    };
    std::vector<float> dgu(gu.size());
    swiglu_backward(dgu.data(), dh.data(), M, gu.data(), rows, M);
    expect_gradient_matches("dgu", gu, dgu, loss, 1e-2, 1e-3f, 560);

    // In place: dh in the up half of dgu (row stride 2M), as swiglu_mlp_backward does it.
    std::vector<float> fused(gu.size(), 0.0f);
    for (int r = 0; r < rows; ++r)
        for (int j = 0; j < M; ++j) fused[r * 2 * M + M + j] = dh[r * M + j];
    swiglu_backward(fused.data(), fused.data() + M, 2 * M, gu.data(), rows, M);
    EXPECT_EQ(max_abs_diff(fused.data(), dgu.data(), gu.size()), 0.0);
}

TEST(SwiGlu, MlpForwardMatchesNaiveAndBackwardMatchesFiniteDifferences) {
    const int rows = 5, C = 6, M = 10;
    auto x = random_vector(rows * C, 141), w_gu = random_vector(2 * M * C, 142, 0.5f),
         w_down = random_vector(C * M, 143, 0.5f);
    std::vector<float> y(rows * C), gu(rows * 2 * M), h(rows * M);
    swiglu_mlp_forward(y.data(), gu.data(), h.data(), x.data(), w_gu.data(), w_down.data(), rows, C,
                       M);
    for (int r = 0; r < rows; ++r) {
        std::vector<double> hr(M);
        for (int j = 0; j < M; ++j) {
            double g = 0, u = 0;
            for (int c = 0; c < C; ++c) {
                g += static_cast<double>(x[r * C + c]) * w_gu[j * C + c];
                u += static_cast<double>(x[r * C + c]) * w_gu[(M + j) * C + c];
            }
            hr[j] = naive_silu(g) * u;
        }
        for (int c = 0; c < C; ++c) {
            double ref = 0;
            for (int j = 0; j < M; ++j) ref += hr[j] * w_down[c * M + j];
            EXPECT_NEAR(y[r * C + c], ref, 1e-5 * (1 + std::fabs(ref)));
        }
    }
    const auto g = random_vector(rows * C, 144);
    auto loss = [&] {
        swiglu_mlp_forward(y.data(), gu.data(), h.data(), x.data(), w_gu.data(), w_down.data(),
                           rows, C, M);
        return weighted_sum(y.data(), g);
    };
    loss();
    // dx is overwritten; the weight gradients accumulate onto what is there.
    const auto dwgu0 = random_vector(w_gu.size(), 145), dwd0 = random_vector(w_down.size(), 146);
    std::vector<float> dx(x.size(), 123.0f), dwgu(dwgu0), dwd(dwd0), dgu(gu.size(), 7.0f);
    swiglu_mlp_backward(dx.data(), dwgu.data(), dwd.data(), dgu.data(), g.data(), x.data(),
                        gu.data(), h.data(), w_gu.data(), w_down.data(), rows, C, M);
    for (size_t i = 0; i < dwgu.size(); ++i) dwgu[i] -= dwgu0[i];
    for (size_t i = 0; i < dwd.size(); ++i) dwd[i] -= dwd0[i];
    expect_gradient_matches("dx", x, dx, loss);
    expect_gradient_matches("dw_gate_up", w_gu, dwgu, loss);
    expect_gradient_matches("dw_down", w_down, dwd, loss);
}

// Grouped-query causal attention in double precision, straight from the definition: query head h
// reads kv head h / (H/KVH).
std::vector<double> naive_gqa_attention(const std::vector<float>& qkv, AttentionShape s) {
    const int T = s.T, C = s.Q, hd = s.head_dim(), W = s.qkv_width(), kvw = s.kv_width();
    const int group = s.H / s.kv_heads();
    std::vector<double> out(static_cast<size_t>(s.B) * T * C, 0.0);
    for (int b = 0; b < s.B; ++b)
        for (int h = 0; h < s.H; ++h) {
            const int k_off = C + (h / group) * hd, v_off = k_off + kvw;
            for (int i = 0; i < T; ++i) {
                std::vector<double> p(i + 1);
                double max = -1e300, sum = 0;
                for (int j = 0; j <= i; ++j) {
                    double dot = 0;
                    for (int d = 0; d < hd; ++d)
                        dot += static_cast<double>(qkv[(b * T + i) * W + h * hd + d]) *
                               qkv[(b * T + j) * W + k_off + d];
                    p[j] = dot / std::sqrt(static_cast<double>(hd));
                    max = std::max(max, p[j]);
                }
                for (int j = 0; j <= i; ++j) sum += (p[j] = std::exp(p[j] - max));
                for (int j = 0; j <= i; ++j)
                    for (int d = 0; d < hd; ++d)
                        out[(b * T + i) * C + h * hd + d] +=
                            p[j] / sum * qkv[(b * T + j) * W + v_off + d];
            }
        }
    return out;
}

TEST(Gqa, AttentionForwardMatchesNaive) {
    for (int kvh : {2, 1}) {
        // T = 70 spans two row blocks of the blocked kernel, the second one partial.
        const AttentionShape s{2, 70, 16, 4, kvh};
        ASSERT_EQ(s.qkv_width(), 16 + 2 * kvh * 4);
        auto qkv = random_vector(static_cast<size_t>(s.B) * s.T * s.qkv_width(), 150 + kvh);
        std::vector<float> out(static_cast<size_t>(s.B) * s.T * s.Q),
            probs(static_cast<size_t>(s.B) * s.H * s.T * s.T);
        attention_forward(out.data(), probs.data(), qkv.data(), s);
        const auto ref = naive_gqa_attention(qkv, s);
        for (size_t i = 0; i < out.size(); ++i)
            ASSERT_NEAR(out[i], ref[i], 1e-5) << kvh << " " << i;
    }
}

TEST(Gqa, KvHeadsEqualToHeadsIsMultiHeadAttention) {
    const AttentionShape mha{2, 9, 16, 4}, explicit_kvh{2, 9, 16, 4, 4};
    auto qkv = random_vector(static_cast<size_t>(mha.B) * mha.T * 3 * mha.Q, 155);
    const auto g = random_vector(static_cast<size_t>(mha.B) * mha.T * mha.Q, 156);
    std::vector<float> out1(g.size()), out2(g.size()), p1(mha.B * mha.H * mha.T * mha.T),
        p2(p1.size()), d1(qkv.size()), d2(qkv.size());
    attention_forward(out1.data(), p1.data(), qkv.data(), mha);
    attention_forward(out2.data(), p2.data(), qkv.data(), explicit_kvh);
    attention_backward(d1.data(), g.data(), qkv.data(), p1.data(), mha);
    attention_backward(d2.data(), g.data(), qkv.data(), p2.data(), explicit_kvh);
    EXPECT_EQ(out1, out2);
    EXPECT_EQ(d1, d2);
}

TEST(Gqa, AttentionBackwardMatchesFiniteDifferences) {
    for (int kvh : {2, 1}) {
        const AttentionShape s{2, 67, 16, 4, kvh};
        auto qkv = random_vector(static_cast<size_t>(s.B) * s.T * s.qkv_width(), 160 + kvh);
        const auto g = random_vector(static_cast<size_t>(s.B) * s.T * s.Q, 162 + kvh);
        std::vector<float> out(g.size()), probs(static_cast<size_t>(s.B) * s.H * s.T * s.T);
        auto loss = [&] {
            attention_forward(out.data(), probs.data(), qkv.data(), s);
            return weighted_sum(out.data(), g);
        };
        loss();
        std::vector<float> dqkv(qkv.size(), 123.0f);  // overwritten
        attention_backward(dqkv.data(), g.data(), qkv.data(), probs.data(), s);
        expect_gradient_matches(kvh == 2 ? "dqkv (KVH=2)" : "dqkv (KVH=1)", qkv, dqkv, loss, 2e-2,
                                1e-2f, 300);
    }
}

TEST(Gqa, CachedAttentionMatchesFullForward) {
    const int T = 11, C = 16, H = 4, KVH = 2;
    const AttentionShape s{1, T, C, H, KVH};
    const int W = s.qkv_width(), kvw = s.kv_width();
    auto qkv = random_vector(static_cast<size_t>(T) * W, 170);
    std::vector<float> full(static_cast<size_t>(T) * C), probs(static_cast<size_t>(H) * T * T);
    attention_forward(full.data(), probs.data(), qkv.data(), s);
    // The caches hold each position's k and v parts of the qkv row.
    std::vector<float> k_cache(static_cast<size_t>(T) * kvw), v_cache(k_cache.size());
    for (int t = 0; t < T; ++t)
        for (int c = 0; c < kvw; ++c) {
            k_cache[t * kvw + c] = qkv[t * W + C + c];
            v_cache[t * kvw + c] = qkv[t * W + C + kvw + c];
        }
    // A prefill of 7 positions, then single-token decode steps.
    std::vector<float> out(full.size(), 0.0f);
    attention_forward_cached(out.data(), qkv.data(), W, k_cache.data(), v_cache.data(), 7, 0, C, H,
                             KVH);
    for (int p = 7; p < T; ++p)
        attention_forward_cached(out.data() + p * C, qkv.data() + p * W, W, k_cache.data(),
                                 v_cache.data(), 1, p, C, H, KVH);
    EXPECT_LT(max_abs_diff(out.data(), full.data(), out.size()), 1e-5);
}

}  // namespace
}  // namespace tinygpt
