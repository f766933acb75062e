#include "kernels/embedding.h"

#include <cstddef>
#include <cstring>

#include "util/parallel.h"

namespace tinygpt {

void embedding_forward(float* out, const int* tokens, const float* token_table,
                       const float* position_table, int B, int T, int C) {
    parallel_for(B * T, B * T >= 256, [&](long i) {
        const float* te = token_table + static_cast<size_t>(tokens[i]) * C;
        float* o = out + static_cast<size_t>(i) * C;
        if (!position_table) {
            std::memcpy(o, te, sizeof(float) * C);
            return;
        }
        const float* pe = position_table + static_cast<size_t>(i % T) * C;
#pragma omp simd
        for (int c = 0; c < C; ++c) o[c] = te[c] + pe[c];
    });
}

void embedding_backward(float* d_token_table, float* d_position_table, const float* dout,
                        const int* tokens, int B, int T, int C) {
    // Several rows hit the same table row, so threads split the channels instead of the rows:
    // no races, and every sum runs in row order (deterministic).
    constexpr int kBlock = 32;
    const int blocks = (C + kBlock - 1) / kBlock;
    parallel_for(blocks, blocks > 1 && B * T >= 256, [&](long blk) {
        const int c0 = blk * kBlock, c1 = c0 + kBlock < C ? c0 + kBlock : C;
        for (int i = 0; i < B * T; ++i) {
            const float* g = dout + static_cast<size_t>(i) * C;
            float* dt = d_token_table + static_cast<size_t>(tokens[i]) * C;
#pragma omp simd
            for (int c = c0; c < c1; ++c) dt[c] += g[c];
            if (!d_position_table) continue;
            float* dp = d_position_table + static_cast<size_t>(i % T) * C;
#pragma omp simd
            for (int c = c0; c < c1; ++c) dp[c] += g[c];
        }
    });
}

}  // namespace tinygpt
