#include "kernels/gemv.h"

#include <algorithm>
#include <cstddef>
#include <cstring>

#include "util/parallel.h"

namespace tinygpt {

namespace {

// A vector of 8 floats in GCC/Clang's portable vector extension: one AVX register, two NEON
// registers; the compiler keeps the accumulators below in registers, which it does not reliably
// do for arrays of floats.
using f32x8 = float __attribute__((vector_size(32)));

f32x8 load8(const float* p) {
    f32x8 v;
    std::memcpy(&v, p, sizeof v);
    return v;
}

constexpr int kLanes = 16;        // two f32x8 accumulators per output: two FMA chains
constexpr int kRowsAtOnce = 4;    // outputs per pass over x: x is loaded once for four rows
constexpr int kRowChunk = 32;     // outputs per thread task (a multiple of kRowsAtOnce)
constexpr int kColumnChunk = 64;  // outputs per task of gemv_columns

// The 16 partial sums of an output, added in a fixed tree.
float sum_lanes(f32x8 a, f32x8 b) {
    const f32x8 s = a + b;
    float lanes[8];
    std::memcpy(lanes, &s, sizeof lanes);
    return ((lanes[0] + lanes[4]) + (lanes[1] + lanes[5])) +
           ((lanes[2] + lanes[6]) + (lanes[3] + lanes[7]));
}

// R outputs at once. Every output gets the same operations in the same order for any R, and
// the chunks are fixed, so the thread count never changes a result.
template <int R>
void dot_rows(float* y, const float* w, size_t ldw, const float* x, int k, float alpha,
              float beta) {
    f32x8 lo[R] = {}, hi[R] = {};
    const float* row[R];
    for (int r = 0; r < R; ++r) row[r] = w + r * ldw;
    int i = 0;
    for (; i + kLanes <= k; i += kLanes) {
        const f32x8 xlo = load8(x + i), xhi = load8(x + i + 8);
        for (int r = 0; r < R; ++r) {
            lo[r] += load8(row[r] + i) * xlo;
            hi[r] += load8(row[r] + i + 8) * xhi;
        }
    }
    for (int r = 0; r < R; ++r) {
        float tail = 0.0f;
        for (int t = i; t < k; ++t) tail += row[r][t] * x[t];
        const float dot = alpha * (sum_lanes(lo[r], hi[r]) + tail);
        y[r] = beta == 0.0f ? dot : dot + beta * y[r];
    }
}

// A vector-times-matrix slice: y[l] for kColumnChunk columns, summed over i in order.
void axpy_columns(float* y, const float* x, const float* w, size_t ldw, int k, int width,
                  float alpha, float beta) {
    constexpr int kVectors = kColumnChunk / 8;
    f32x8 acc[kVectors] = {};
    float tail[kColumnChunk] = {};
    const bool full = width == kColumnChunk;
    for (int i = 0; i < k; ++i) {
        const float* wi = w + i * ldw;
        if (full) {
            const f32x8 xi = f32x8{} + x[i];
            for (int v = 0; v < kVectors; ++v) acc[v] += load8(wi + 8 * v) * xi;
        } else {
            for (int l = 0; l < width; ++l) tail[l] += wi[l] * x[i];
        }
    }
    if (full) std::memcpy(tail, acc, sizeof acc);
    for (int l = 0; l < width; ++l) {
        const float v = alpha * tail[l];
        y[l] = beta == 0.0f ? v : v + beta * y[l];
    }
}

// Runs fn(chunk) for every chunk, on all threads only when the work pays for the fork/join
// (a parallel region that ends up with one thread still costs a call into the runtime).
template <typename Fn>
void for_each_chunk(int chunks, long work, Fn&& fn) {
    parallel_for(chunks, chunks > 1 && work >= kMinParallelMultiplyAdds,
                 [&](long c) { fn(static_cast<int>(c)); });
}

}  // namespace

void gemv_rows(float* y, const float* w, int ldw, const float* x, int n, int k, float alpha,
               float beta) {
    const int chunks = (n + kRowChunk - 1) / kRowChunk;
    for_each_chunk(chunks, static_cast<long>(n) * k, [&](int c) {
        const int j1 = std::min(n, (c + 1) * kRowChunk);
        int j = c * kRowChunk;
        for (; j + kRowsAtOnce <= j1; j += kRowsAtOnce)
            dot_rows<kRowsAtOnce>(y + j, w + static_cast<size_t>(j) * ldw, ldw, x, k, alpha, beta);
        for (; j < j1; ++j)
            dot_rows<1>(y + j, w + static_cast<size_t>(j) * ldw, ldw, x, k, alpha, beta);
    });
}

void gemv_columns(float* y, const float* x, const float* w, int ldw, int k, int n, float alpha,
                  float beta) {
    const int chunks = (n + kColumnChunk - 1) / kColumnChunk;
    for_each_chunk(chunks, static_cast<long>(n) * k, [&](int c) {
        const int j0 = c * kColumnChunk;
        axpy_columns(y + j0, x, w + j0, ldw, k, std::min(kColumnChunk, n - j0), alpha, beta);
    });
}

}  // namespace tinygpt
