#include "kernels/attention.h"

#include <cmath>
#include <cstddef>
#include <cstring>
#include <vector>

#include "kernels/gemm.h"
#include "kernels/softmax.h"
#include "util/parallel.h"

namespace tinygpt {

namespace {

constexpr int kRowBlock = 64;

// Softmax over the first `len` scores of a row of `width`; the masked rest becomes 0.
void causal_softmax_row(float* row, int len, int width) {
    softmax_row(row, row, len);
    std::memset(row + len, 0, sizeof(float) * static_cast<size_t>(width - len));
}
}  // namespace

void attention_forward(float* out, float* probs, const float* qkv, AttentionShape s) {
    const int T = s.T, Q = s.Q, hd = s.head_dim(), ld = s.qkv_width(), kvw = s.kv_width();
    const int group = s.H / s.kv_heads();
    const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
    parallel_for(s.B * s.H, true, [&](long bh) {
        const int b = bh / s.H, h = bh % s.H;
        const float* row = qkv + static_cast<size_t>(b) * T * ld;
        const float* q = row + h * hd;
        const float* k = row + Q + (h / group) * hd;
        const float* v = k + kvw;
        float* p = probs + static_cast<size_t>(bh) * T * T;
        float* o = out + static_cast<size_t>(b) * T * Q + h * hd;
        for (int i0 = 0; i0 < T; i0 += kRowBlock) {
            const int i1 = i0 + kRowBlock < T ? i0 + kRowBlock : T;
            gemm(false, true, i1 - i0, i1, hd, scale, q + static_cast<size_t>(i0) * ld, ld, k, ld,
                 0.0f, p + static_cast<size_t>(i0) * T, T);
            for (int i = i0; i < i1; ++i)
                causal_softmax_row(p + static_cast<size_t>(i) * T, i + 1, T);
            gemm(false, false, i1 - i0, hd, i1, 1.0f, p + static_cast<size_t>(i0) * T, T, v, ld,
                 0.0f, o + static_cast<size_t>(i0) * Q, Q);
        }
    });
}

void attention_backward(float* dqkv, const float* dout, const float* qkv, const float* probs,
                        AttentionShape s) {
    const int T = s.T, Q = s.Q, H = s.H, hd = s.head_dim(), ld = s.qkv_width(), kvw = s.kv_width();
    const int KVH = s.kv_heads(), group = H / KVH;
    const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
    // One thread owns a (batch, kv head) and runs all query heads of its group, so the dk/dv
    // that the group shares are accumulated by that thread alone.
    parallel_region(threads_for_region(true), [&](int thread, int threads) {
        std::vector<float> dscores(static_cast<size_t>(T) * T);
        const IndexRange share = static_share(static_cast<long>(s.B) * KVH, thread, threads);
        for (int bg = static_cast<int>(share.begin); bg < share.end; ++bg) {
            const int b = bg / KVH, kvh = bg % KVH;
            const size_t row = static_cast<size_t>(b) * T * ld;
            const size_t kv_off = row + Q + static_cast<size_t>(kvh) * hd;
            const float* k = qkv + kv_off;
            const float* v = k + kvw;
            float* dk = dqkv + kv_off;
            float* dv = dk + kvw;
            float* ds = dscores.data();
            for (int t = 0; t < T; ++t)
                for (int d = 0; d < hd; ++d)
                    dk[static_cast<size_t>(t) * ld + d] = dv[static_cast<size_t>(t) * ld + d] =
                        0.0f;
            for (int h = kvh * group; h < (kvh + 1) * group; ++h) {
                const float* q = qkv + row + h * hd;
                float* dq = dqkv + row + h * hd;
                const float* p = probs + (static_cast<size_t>(b) * H + h) * T * T;
                const float* g = dout + static_cast<size_t>(b) * T * Q + h * hd;
                for (int i0 = 0; i0 < T; i0 += kRowBlock) {
                    const int i1 = i0 + kRowBlock < T ? i0 + kRowBlock : T;
                    const int rows = i1 - i0;
                    const float* p_blk = p + static_cast<size_t>(i0) * T;
                    float* ds_blk = ds + static_cast<size_t>(i0) * T;
                    // dP = dO·Vᵀ, then dS = P ⊙ (dP − Σ_j P·dP) · scale (zero above the diagonal).
                    gemm(false, true, rows, i1, hd, 1.0f, g + static_cast<size_t>(i0) * Q, Q, v, ld,
                         0.0f, ds_blk, T);
                    for (int i = i0; i < i1; ++i) {
                        const float* prow = p + static_cast<size_t>(i) * T;
                        float* drow = ds + static_cast<size_t>(i) * T;
                        float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
                        for (int j = 0; j <= i; ++j) dot += prow[j] * drow[j];
#pragma omp simd
                        for (int j = 0; j <= i; ++j) drow[j] = prow[j] * (drow[j] - dot) * scale;
                        for (int j = i + 1; j < i1; ++j) drow[j] = 0.0f;
                    }
                    gemm(false, false, rows, hd, i1, 1.0f, ds_blk, T, k, ld, 0.0f,
                         dq + static_cast<size_t>(i0) * ld, ld);
                    gemm(true, false, i1, hd, rows, 1.0f, ds_blk, T,
                         q + static_cast<size_t>(i0) * ld, ld, 1.0f, dk, ld);
                    gemm(true, false, i1, hd, rows, 1.0f, p_blk, T, g + static_cast<size_t>(i0) * Q,
                         Q, 1.0f, dv, ld);
                }
            }
        }
    });
}

void attention_forward_cached(float* out, const float* q, int ldq, const float* k_cache,
                              const float* v_cache, int n, int p0, int Q, int H, int KVH) {
    const int hd = Q / H, len = p0 + n;
    const int kvw = (KVH > 0 ? KVH : H) * hd, group = H / (KVH > 0 ? KVH : H);
    const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
    // Heads in parallel only when there is enough work to pay for the fork/join (prefill).
    const bool parallel = static_cast<long>(n) * len * Q >= 1 << 16;
    parallel_region(threads_for_region(parallel), [&](int thread, int threads) {
        std::vector<float> scores(static_cast<size_t>(n) * len);
        const IndexRange share = static_share(H, thread, threads);
        for (int h = static_cast<int>(share.begin); h < share.end; ++h) {
            const float* qh = q + h * hd;
            const float* kh = k_cache + (h / group) * hd;
            const float* vh = v_cache + (h / group) * hd;
            gemm(false, true, n, len, hd, scale, qh, ldq, kh, kvw, 0.0f, scores.data(), len);
            for (int i = 0; i < n; ++i)
                causal_softmax_row(scores.data() + static_cast<size_t>(i) * len, p0 + i + 1, len);
            gemm(false, false, n, hd, len, 1.0f, scores.data(), len, vh, kvw, 0.0f, out + h * hd,
                 Q);
        }
    });
}

}  // namespace tinygpt
