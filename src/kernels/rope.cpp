#include "kernels/rope.h"

#include <cmath>
#include <cstddef>
#include <string>

#include "util/error.h"
#include "util/parallel.h"

namespace tinygpt {

namespace {

constexpr long kRowsPerChunk = 64;

// Rotates every pair (x_i, x_{i+half}) of `heads` head vectors by the angle whose cos/sin are
// given; sign = −1 rotates by −angle (the backward).
void rotate_row(float* x, int heads, int half, const float* __restrict c, const float* __restrict s,
                float sign) {
    for (int h = 0; h < heads; ++h) {
        float* __restrict lo = x + static_cast<size_t>(h) * 2 * half;
        float* __restrict hi = lo + half;
#pragma omp simd
        for (int i = 0; i < half; ++i) {
            const float a = lo[i], b = hi[i], sn = sign * s[i];
            lo[i] = a * c[i] - b * sn;
            hi[i] = b * c[i] + a * sn;
        }
    }
}

void rope_apply(float* x, int ld, int B, int T, int heads, int pos0, const RopeTable& table,
                float sign) {
    const int half = table.head_dim() / 2;
    parallel_for_chunks(
        static_cast<long>(B) * T,
        [&](long r0, long count) {
            for (long r = r0; r < r0 + count; ++r) {
                const int pos = pos0 + static_cast<int>(r % T);
                rotate_row(x + static_cast<size_t>(r) * ld, heads, half, table.cos(pos),
                           table.sin(pos), sign);
            }
        },
        kRowsPerChunk);
}

}  // namespace

RopeTable::RopeTable(int max_positions, int head_dim, float theta)
    : half_(head_dim / 2), max_positions_(max_positions) {
    require(head_dim > 0 && head_dim % 2 == 0,
            "rope: head dimension must be even and positive, got " + std::to_string(head_dim));
    require(max_positions >= 0, "rope: negative number of positions");
    require(theta > 0.0f, "rope: theta must be positive");
    cos_.resize(static_cast<size_t>(max_positions) * half_);
    sin_.resize(cos_.size());
    // Angles in double: pos·inv_freq reaches ~1e5 rad at long contexts, where float's relative
    // rounding would already shift the angle by ~1e-2.
    for (int i = 0; i < half_; ++i) {
        const double inv_freq = 1.0 / std::pow(static_cast<double>(theta), 2.0 * i / head_dim);
        for (int p = 0; p < max_positions; ++p) {
            const double angle = p * inv_freq;
            cos_[static_cast<size_t>(p) * half_ + i] = static_cast<float>(std::cos(angle));
            sin_[static_cast<size_t>(p) * half_ + i] = static_cast<float>(std::sin(angle));
        }
    }
}

void rope_forward(float* x, int ld, int B, int T, int heads, int pos0, const RopeTable& table) {
    rope_apply(x, ld, B, T, heads, pos0, table, 1.0f);
}

void rope_backward(float* dx, int ld, int B, int T, int heads, int pos0, const RopeTable& table) {
    rope_apply(dx, ld, B, T, heads, pos0, table, -1.0f);
}

}  // namespace tinygpt
