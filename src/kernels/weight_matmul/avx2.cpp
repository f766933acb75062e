// The AVX2 + FMA + F16C path of weight_matmul (kernels.h), compiled with those instruction sets
// whatever the build targets; dispatch.cpp runs it only on CPUs that have them.
//
// bf16 / f16: register blocks of R rows of x × C rows of W, one 8-lane accumulator each, over
// tiles of 512 columns; each tile's 8 lanes are added in a fixed tree and the tiles in order. For
// a few rows of x the weights are widened in registers as they are read (decode is bound by
// memory, not by the widening); for more (24), a tile of W is widened to f32 once and reused by
// all the rows. Both give the same bits: the same f32 weights meet the same operations.
// q8_0: per block, an exact integer dot product of the int8 weights and quantised activations
// (vpmaddubsw + vpmaddwd), converted to f32 and scaled by the two scales into 8-lane
// accumulators.
#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>

#include <cstdint>

#include "kernels/weight_matmul/kernels.h"

namespace tinygpt::weight_kernels {
namespace {

constexpr int kTileCols = 512;  // columns summed per tile before the lanes are added up
constexpr int kTileRows = 8;    // rows of W widened at a time (16 KiB of f32: stays in L1)
// Rows of x from which widening a tile once beats widening in registers per block of rows
// (measured: n = 16 is faster in registers, n = 32 through the tile).
constexpr int kWidenTileFromRows = 24;
constexpr int kRowsOfX = 3;  // register block: 3 × 4 accumulators + 3 rows of x + a weight
constexpr int kRowsOfW = 4;
constexpr int kQ8RowsOfX = 2;  // 2 × 4 accumulators + 2 rows of x + a block of W
constexpr int kQ8RowsOfW = 4;

// Rows of W read from memory are prefetched by software: a group of rows is read as several short
// streams, which the hardware prefetcher hardly follows (decode ran at about half the read
// bandwidth). Each row prefetches the same column of the row one group below: the groups are
// adjacent in memory, so this runs one group ahead of the reads.

int smaller(int a, int b) {
    return a < b ? a : b;
}

float fma_scalar(float a, float b, float c) {
    return _mm_cvtss_f32(_mm_fmadd_ss(_mm_set_ss(a), _mm_set_ss(b), _mm_set_ss(c)));
}

// Eight weights from p widened to f32, and one (tails).
struct Bf16 {
    using Element = uint16_t;
    static constexpr bool kFromMemory = true;
    static __m256 load8(const uint16_t* p) {
        const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
        return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
    }
    static float load1(const uint16_t* p) {
        const uint32_t bits = static_cast<uint32_t>(*p) << 16;
        float f;
        __builtin_memcpy(&f, &bits, 4);
        return f;
    }
};
struct F16 {
    using Element = uint16_t;
    static constexpr bool kFromMemory = true;
    static __m256 load8(const uint16_t* p) {
        return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    }
    static float load1(const uint16_t* p) { return _cvtsh_ss(*p); }
};
struct F32 {
    using Element = float;
    static constexpr bool kFromMemory = false;  // a widened tile, in L1
    static __m256 load8(const float* p) { return _mm256_loadu_ps(p); }
    static float load1(const float* p) { return *p; }
};

// The sums of four accumulators, each by the same tree: ((l0+l1)+(l2+l3)) + ((l4+l5)+(l6+l7)).
__m128 reduce4(__m256 a, __m256 b, __m256 c, __m256 d) {
    const __m256 ab = _mm256_hadd_ps(a, b);  // a01 a23 b01 b23 | a45 a67 b45 b67
    const __m256 cd = _mm256_hadd_ps(c, d);
    const __m256 abcd = _mm256_hadd_ps(ab, cd);  // a0123 b0123 c0123 d0123 | a4567 …
    return _mm_add_ps(_mm256_castps256_ps128(abcd), _mm256_extractf128_ps(abcd, 1));
}

// out[i][j] = Σ_{k < len} x[i·xs + k] · w[j·ws + k] for i < R, j < C.
template <int R, int C, typename W>
void float_block(float* out, const float* x, size_t xs, const typename W::Element* w, size_t ws,
                 int len) {
    __m256 acc[R][C];
#pragma GCC unroll 4
    for (int i = 0; i < R; ++i)
#pragma GCC unroll 4
        for (int j = 0; j < C; ++j) acc[i][j] = _mm256_setzero_ps();
    int k = 0;
    for (; k + 8 <= len; k += 8) {
        if (W::kFromMemory && k % 32 == 0)
#pragma GCC unroll 4
            for (int j = 0; j < C; ++j)
                _mm_prefetch(reinterpret_cast<const char*>(w + (j + kRowsOfW) * ws + k),
                             _MM_HINT_T0);
        __m256 xv[R];
#pragma GCC unroll 4
        for (int i = 0; i < R; ++i) {
            xv[i] = _mm256_loadu_ps(x + i * xs + k);
            // Keeps x (and the weights, below) in registers: GCC folds them into the FMAs as
            // memory operands otherwise, twice as many loads as FMAs, and the loads then bound
            // the product at ~60% of the FMA rate.
            __asm__("" : "+x"(xv[i]));
        }
#pragma GCC unroll 4
        for (int j = 0; j < C; ++j) {
            __m256 wv = W::load8(w + j * ws + k);
            __asm__("" : "+x"(wv));  // see xv
#pragma GCC unroll 4
            for (int i = 0; i < R; ++i) acc[i][j] = _mm256_fmadd_ps(xv[i], wv, acc[i][j]);
        }
    }
    const __m256 zero = _mm256_setzero_ps();
#pragma GCC unroll 4
    for (int i = 0; i < R; ++i)
        _mm_storeu_ps(out + 4 * i, reduce4(acc[i][0], C > 1 ? acc[i][C > 1 ? 1 : 0] : zero,
                                           C > 2 ? acc[i][C > 2 ? 2 : 0] : zero,
                                           C > 3 ? acc[i][C > 3 ? 3 : 0] : zero));
    for (; k < len; ++k)
        for (int i = 0; i < R; ++i)
            for (int j = 0; j < C; ++j)
                out[4 * i + j] =
                    fma_scalar(x[i * xs + k], W::load1(w + j * ws + k), out[4 * i + j]);
}

template <typename W>
using FloatBlockFn = void (*)(float*, const float*, size_t, const typename W::Element*, size_t,
                              int);

template <typename W, int R>
constexpr FloatBlockFn<W> float_block_for(int c) {
    return c == 1   ? float_block<R, 1, W>
           : c == 2 ? float_block<R, 2, W>
           : c == 3 ? float_block<R, 3, W>
                    : float_block<R, 4, W>;
}
template <typename W>
FloatBlockFn<W> float_block_for(int r, int c) {
    return r == 1   ? float_block_for<W, 1>(c)
           : r == 2 ? float_block_for<W, 2>(c)
                    : float_block_for<W, 3>(c);
}

template <typename W>
void widen(float* out, const uint16_t* in, int len) {
    int k = 0;
    for (; k + 8 <= len; k += 8) _mm256_storeu_ps(out + k, W::load8(in + k));
    for (; k < len; ++k) out[k] = W::load1(in + k);
}

#include "kernels/weight_matmul/block_loops.h"

// f16 → f32 of every pattern: a block's scale is then one load and a broadcast from memory,
// instead of a load, an insert, a conversion and a broadcast (ggml does the same).
struct F16Table {
    float values[65536];
    F16Table() {
        for (int h = 0; h < 65536; ++h) values[h] = _cvtsh_ss(static_cast<unsigned short>(h));
    }
};
const F16Table& f16_table() {
    static const F16Table table;
    return table;
}

const float* block_scale(const float* table, const uint8_t* block) {
    uint16_t h;
    __builtin_memcpy(&h, block, 2);
    return table + h;
}

// One block's exact integer dot product, as 8 lanes of partial sums in f32. vpmaddubsw takes
// unsigned × signed bytes: |w| (−128 reads as 128) times x with w's sign; x is within ±127, so
// its negation is exact, and a pair of products (≤ 2 · 128 · 127) fits int16.
__m256 block_dot(__m256i w, __m256i abs_w, __m256i x) {
    const __m256i pairs = _mm256_maddubs_epi16(abs_w, _mm256_sign_epi8(x, w));
    return _mm256_cvtepi32_ps(_mm256_madd_epi16(pairs, _mm256_set1_epi16(1)));
}

// out[i][j] = Σ_blocks scale_w · scale_x · (q_w · q_x) for R rows of quantised x and C rows of W.
template <int R, int C>
void q8_0_block(float* out, const int8_t* xq, const float* xd, size_t xs, size_t xds,
                const uint8_t* w, size_t ws, int blocks, bool prefetch) {
    const float* table = f16_table().values;
    __m256 acc[R][C];
#pragma GCC unroll 4
    for (int i = 0; i < R; ++i)
#pragma GCC unroll 4
        for (int j = 0; j < C; ++j) acc[i][j] = _mm256_setzero_ps();
    for (int b = 0; b < blocks; ++b) {
        __m256i xv[R];
#pragma GCC unroll 4
        for (int i = 0; i < R; ++i)
            xv[i] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq + i * xs + b * kBlock));
#pragma GCC unroll 4
        for (int j = 0; j < C; ++j) {
            const uint8_t* block = w + j * ws + b * kBlockBytes;
            if (prefetch)
                _mm_prefetch(reinterpret_cast<const char*>(block + kQ8RowsOfW * ws), _MM_HINT_T0);
            const __m256i wv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + 2));
            const __m256i abs_w = _mm256_sign_epi8(wv, wv);
            const __m256 scale_w = _mm256_broadcast_ss(block_scale(table, block));
#pragma GCC unroll 4
            for (int i = 0; i < R; ++i) {
                const __m256 scale = _mm256_mul_ps(scale_w, _mm256_broadcast_ss(xd + i * xds + b));
                acc[i][j] = _mm256_fmadd_ps(block_dot(wv, abs_w, xv[i]), scale, acc[i][j]);
            }
        }
    }
    const __m256 zero = _mm256_setzero_ps();
#pragma GCC unroll 4
    for (int i = 0; i < R; ++i)
        _mm_storeu_ps(out + 4 * i, reduce4(acc[i][0], C > 1 ? acc[i][C > 1 ? 1 : 0] : zero,
                                           C > 2 ? acc[i][C > 2 ? 2 : 0] : zero,
                                           C > 3 ? acc[i][C > 3 ? 3 : 0] : zero));
}

using Q8BlockFn = void (*)(float*, const int8_t*, const float*, size_t, size_t, const uint8_t*,
                           size_t, int, bool);
Q8BlockFn q8_0_block_for(int r, int c) {
    if (r == 1)
        return c == 1   ? q8_0_block<1, 1>
               : c == 2 ? q8_0_block<1, 2>
               : c == 3 ? q8_0_block<1, 3>
                        : q8_0_block<1, 4>;
    return c == 1   ? q8_0_block<2, 1>
           : c == 2 ? q8_0_block<2, 2>
           : c == 3 ? q8_0_block<2, 3>
                    : q8_0_block<2, 4>;
}

void q8_0_rows(float* y, const QuantisedRows& x, int n, const WeightMatrix& w, int row_begin,
               int row_end) {
    q8_0_rows_of<kQ8RowsOfX, kQ8RowsOfW>(y, x, n, w, row_begin, row_end, q8_0_block_for);
}

void quantise_rows(int8_t* quants, float* scales, const float* x, int64_t count) {
    const __m256 sign_bit = _mm256_set1_ps(-0.0f);
    // vpackssdw / vpacksswb interleave the 128-bit lanes; this puts the quants back in order.
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    for (int64_t b = 0; b < count / kBlock; ++b) {
        const float* xb = x + b * kBlock;
        __m256 v[4];
        for (int t = 0; t < 4; ++t) v[t] = _mm256_loadu_ps(xb + 8 * t);
        __m256 amax = _mm256_andnot_ps(sign_bit, v[0]);
        __m256 nan_if_not_finite = _mm256_sub_ps(v[0], v[0]);  // 0 for finite values
        for (int t = 1; t < 4; ++t) {
            amax = _mm256_max_ps(amax, _mm256_andnot_ps(sign_bit, v[t]));
            nan_if_not_finite = _mm256_add_ps(nan_if_not_finite, _mm256_sub_ps(v[t], v[t]));
        }
        int8_t* qb = quants + b * kBlock;
        if (_mm256_movemask_ps(_mm256_cmp_ps(nan_if_not_finite, nan_if_not_finite, _CMP_ORD_Q)) !=
            0xff) {
            scales[b] = __builtin_nanf("");
            _mm256_storeu_si256(reinterpret_cast<__m256i*>(qb), _mm256_setzero_si256());
            continue;
        }
        __m128 m = _mm_max_ps(_mm256_castps256_ps128(amax), _mm256_extractf128_ps(amax, 1));
        m = _mm_max_ps(m, _mm_movehl_ps(m, m));
        m = _mm_max_ss(m, _mm_movehdup_ps(m));
        const float d = _mm_cvtss_f32(m) / 127.0f;
        const float id = d >= 1.17549435e-38f ? 1.0f / d : 0.0f;
        scales[b] = d;
        const __m256 inverse = _mm256_set1_ps(id);
        __m256i q[4];
        for (int t = 0; t < 4; ++t)
            q[t] = _mm256_cvtps_epi32(_mm256_round_ps(
                _mm256_mul_ps(v[t], inverse), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
        const __m256i bytes =
            _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(qb),
                            _mm256_permutevar8x32_epi32(bytes, order));
    }
}

void widen_rows(float* out, const WeightMatrix& w, int first, int count) {
    const float* table = f16_table().values;
    const size_t cols = static_cast<size_t>(w.cols);
    for (int r = 0; r < count; ++r) {
        const size_t row = static_cast<size_t>(first) + r;
        float* o = out + r * cols;
        switch (w.dtype) {
            case WeightDtype::F32:
                __builtin_memcpy(o, static_cast<const float*>(w.data) + row * cols, cols * 4);
                break;
            case WeightDtype::BF16:
            case WeightDtype::F16:
                (w.dtype == WeightDtype::BF16
                     ? widen<Bf16>
                     : widen<F16>)(o, static_cast<const uint16_t*>(w.data) + row * cols, w.cols);
                break;
            case WeightDtype::Q8_0: {
                const size_t blocks = cols / kBlock;
                const uint8_t* in =
                    static_cast<const uint8_t*>(w.data) + row * blocks * kBlockBytes;
                for (size_t b = 0; b < blocks; ++b) {
                    const uint8_t* block = in + b * kBlockBytes;
                    const __m256 d = _mm256_broadcast_ss(block_scale(table, block));
                    for (int t = 0; t < 4; ++t) {  // exact: 11 significant bits times 8
                        const __m128i q8 =
                            _mm_loadl_epi64(reinterpret_cast<const __m128i*>(block + 2 + 8 * t));
                        _mm256_storeu_ps(
                            o + b * kBlock + 8 * t,
                            _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q8)), d));
                    }
                }
                break;
            }
        }
    }
}

}  // namespace

const IsaKernels& avx2_kernels() {
    static const IsaKernels kernels{"avx2",    false,         float_rows,
                                    q8_0_rows, quantise_rows, widen_rows};
    return kernels;
}

}  // namespace tinygpt::weight_kernels

#endif
