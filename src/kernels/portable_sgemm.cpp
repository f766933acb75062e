// Goto-style blocking: op(B) is packed into 8-column panels of kKc rows and op(A) into 4-row
// strips, so the micro-kernel reads both contiguously and keeps a 4×8 tile of C in 8 vector
// registers (two 4-lane vectors per row). A 4×16 tile (16 accumulators) ran 1.6× slower in V8,
// which compiles WebAssembly SIMD to the 16 SSE registers of x86-64: with the B vectors and the
// broadcast it spills.
// GCC/Clang vector extensions rather than intrinsics keep one source for every target; with
// -msimd128 they become WebAssembly SIMD. Packing also turns the transposed cases into the same
// kernel, and zero padding of the panels removes edge cases from the inner loop.
#include "kernels/portable_sgemm.h"

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <vector>

#include "util/parallel.h"

namespace tinygpt {

namespace {

typedef float Vec4 __attribute__((vector_size(16)));

constexpr int kMr = 4;  // rows of the C tile
constexpr int kNr = 8;  // columns of the C tile (kVecs Vec4)
constexpr int kVecs = kNr / 4;
constexpr int kKc = 256;  // depth of a packed block: an A strip (4 KB) + a B panel (8 KB) in L1
constexpr int kNc = 512;  // columns per thread task

Vec4 load4(const float* p) {
    Vec4 v;
    std::memcpy(&v, p, sizeof v);
    return v;
}

void store4(float* p, Vec4 v) {
    std::memcpy(p, &v, sizeof v);
}

// op(A)[i, p] and op(B)[p, j] of the row-major operands.
float a_at(const float* a, int lda, bool trans, int i, int p) {
    return trans ? a[static_cast<size_t>(p) * lda + i] : a[static_cast<size_t>(i) * lda + p];
}
float b_at(const float* b, int ldb, bool trans, int p, int j) {
    return trans ? b[static_cast<size_t>(j) * ldb + p] : b[static_cast<size_t>(p) * ldb + j];
}

// panel[p * kNr + jj] = op(B)[p0 + p, j0 + jj], zero past n.
void pack_b(float* panel, const float* b, int ldb, bool trans, int p0, int kc, int j0, int n) {
    const int cols = std::min(kNr, n - j0);
    for (int p = 0; p < kc; ++p) {
        float* row = panel + static_cast<size_t>(p) * kNr;
        if (!trans && cols == kNr) {
            std::memcpy(row, b + static_cast<size_t>(p0 + p) * ldb + j0, kNr * sizeof(float));
            continue;
        }
        for (int jj = 0; jj < cols; ++jj) row[jj] = b_at(b, ldb, trans, p0 + p, j0 + jj);
        for (int jj = cols; jj < kNr; ++jj) row[jj] = 0.0f;
    }
}

// strip[p * kMr + ii] = alpha · op(A)[i0 + ii, p0 + p], zero past m.
void pack_a(float* strip, const float* a, int lda, bool trans, float alpha, int i0, int m, int p0,
            int kc) {
    const int rows = std::min(kMr, m - i0);
    for (int p = 0; p < kc; ++p) {
        float* col = strip + static_cast<size_t>(p) * kMr;
        for (int ii = 0; ii < rows; ++ii) col[ii] = alpha * a_at(a, lda, trans, i0 + ii, p0 + p);
        for (int ii = rows; ii < kMr; ++ii) col[ii] = 0.0f;
    }
}

// C[rows, cols] += strip · panel over kc.
void micro_kernel(float* c, int ldc, int rows, int cols, const float* strip, const float* panel,
                  int kc) {
    Vec4 acc[kMr][kVecs] = {};
    for (int p = 0; p < kc; ++p) {
        const float* bp = panel + static_cast<size_t>(p) * kNr;
        Vec4 b[kVecs];
        for (int v = 0; v < kVecs; ++v) b[v] = load4(bp + 4 * v);
        const float* ap = strip + static_cast<size_t>(p) * kMr;
        for (int ii = 0; ii < kMr; ++ii) {
            const float av = ap[ii];
            for (int v = 0; v < kVecs; ++v) acc[ii][v] += av * b[v];
        }
    }
    for (int ii = 0; ii < rows; ++ii) {
        float* ci = c + static_cast<size_t>(ii) * ldc;
        if (cols == kNr) {
            for (int v = 0; v < kVecs; ++v) store4(ci + 4 * v, load4(ci + 4 * v) + acc[ii][v]);
        } else {
            float tile[kNr];
            std::memcpy(tile, acc[ii], sizeof tile);
            for (int jj = 0; jj < cols; ++jj) ci[jj] += tile[jj];
        }
    }
}

// C[rows i_begin..i_end, columns j_begin..j_end] += alpha · op(A) · op(B) over all of k, with this
// thread's packing buffers (kept between calls: allocating and zero-filling 520 KB per product
// cost 13% of a training step in the browser). Every element's sum runs over k in the same
// blocks of kKc whatever the block boundaries, so the result does not depend on the tiling.
void multiply_block(bool trans_a, bool trans_b, int i_begin, int i_end, int j_begin, int j_end,
                    int k, float alpha, const float* a, int lda, const float* b, int ldb, float* c,
                    int ldc) {
    thread_local std::vector<float> panel(static_cast<size_t>(kKc) * kNc),
        strip(static_cast<size_t>(kKc) * kMr);
    for (int p0 = 0; p0 < k; p0 += kKc) {
        const int kc = std::min(kKc, k - p0);
        for (int j0 = j_begin; j0 < j_end; j0 += kNr)
            pack_b(panel.data() + static_cast<size_t>(j0 - j_begin) * kKc, b, ldb, trans_b, p0, kc,
                   j0, j_end);
        for (int i0 = i_begin; i0 < i_end; i0 += kMr) {
            pack_a(strip.data(), a, lda, trans_a, alpha, i0, i_end, p0, kc);
            const int rows = std::min(kMr, i_end - i0);
            for (int j0 = j_begin; j0 < j_end; j0 += kNr)
                micro_kernel(c + static_cast<size_t>(i0) * ldc + j0, ldc, rows,
                             std::min(kNr, j_end - j0), strip.data(),
                             panel.data() + static_cast<size_t>(j0 - j_begin) * kKc, kc);
        }
    }
}

int ceil_div(int a, int b) {
    return (a + b - 1) / b;
}
int round_up(int a, int multiple) {
    return ceil_div(a, multiple) * multiple;
}

// How a product is split into tasks, each a block of C that one thread computes alone: blocks
// of columns first (op(B) is then packed once), narrowed below kNc until every thread has one,
// then blocks of rows when the columns alone cannot feed the threads (a product with few
// columns). The minimum sizes keep the packing a small share of each task.
struct Tiling {
    int block_rows, block_cols, row_blocks, column_blocks;
    int tasks() const { return row_blocks * column_blocks; }
};

Tiling choose_tiling(int m, int n, int threads) {
    constexpr int kMinBlockCols = 64, kMinBlockRows = 32;
    Tiling t{};
    t.block_cols = kNc;
    if (threads > 1)
        t.block_cols = std::clamp(round_up(ceil_div(n, threads), kNr), kMinBlockCols, kNc);
    t.column_blocks = ceil_div(n, t.block_cols);
    t.block_rows = m;
    if (t.column_blocks < threads) {
        const int wanted = std::min(ceil_div(threads, t.column_blocks), ceil_div(m, kMinBlockRows));
        t.block_rows = round_up(ceil_div(m, std::max(1, wanted)), kMr);
    }
    t.row_blocks = ceil_div(m, t.block_rows);
    return t;
}

}  // namespace

void portable_sgemm(bool trans_a, bool trans_b, int m, int n, int k, float alpha, const float* a,
                    int lda, const float* b, int ldb, float beta, float* c, int ldc) {
    if (m <= 0 || n <= 0) return;
    for (int i = 0; i < m; ++i) {
        float* ci = c + static_cast<size_t>(i) * ldc;
        if (beta == 0.0f)
            std::fill(ci, ci + n, 0.0f);
        else if (beta != 1.0f)
            for (int j = 0; j < n; ++j) ci[j] *= beta;
    }
    if (k <= 0 || alpha == 0.0f) return;
    const int threads = threads_for_region(static_cast<double>(m) * n * k >= 1e6);
    const Tiling tiling = choose_tiling(m, n, threads);
    parallel_region(tiling.tasks() > 1 ? threads : 1, [&](int thread, int count) {
        const IndexRange share = static_share(tiling.tasks(), thread, count);
        for (long task = share.begin; task < share.end; ++task) {
            const int i_begin = static_cast<int>(task / tiling.column_blocks) * tiling.block_rows;
            const int j_begin = static_cast<int>(task % tiling.column_blocks) * tiling.block_cols;
            multiply_block(trans_a, trans_b, i_begin, std::min(m, i_begin + tiling.block_rows),
                           j_begin, std::min(n, j_begin + tiling.block_cols), k, alpha, a, lda, b,
                           ldb, c, ldc);
        }
    });
}

}  // namespace tinygpt
