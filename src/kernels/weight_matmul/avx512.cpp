// The AVX-512 path of weight_matmul (kernels.h), compiled with AVX-512F/BW/VL whatever the build
// targets (CMakeLists.txt); dispatch.cpp runs it only on CPUs that have them. BF16 (vdpbf16ps)
// and VNNI (vpdpbusd) are enabled per function and used when the CPU reports them.
//
// bf16 with AVX512_BF16: the activations are rounded to bf16 (nearest even, as vcvtne2ps2bf16
// does: denormals flushed) and vdpbf16ps multiplies 32 pairs at a time into 16 f32 lanes; the
// weights are read as stored, with no widening. Otherwise (and for f16) as the AVX2 path, with
// 16-lane accumulators, masked loads for the tails, and 4 × 4 register blocks (32 registers).
// q8_0 with VNNI: vpdpbusd replaces vpmaddubsw + vpmaddwd; both sum the same four exact
// products per lane, so the results are the AVX2 path's bits. Without VNNI the AVX2 kernel runs.
// Activation quantisation and widening are the AVX2 path's (the same bits on every path anyway).
//
// Rows of W are prefetched one group of rows ahead, as on AVX2 (avx2.cpp says why).
// Every output of a path is summed per tile of 512 columns, its 16 lanes in a fixed tree, the
// tiles in order, so its bits do not depend on n, the chunk of rows or the thread.
#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>

#include <cstdint>

#include "kernels/weight_matmul/kernels.h"

// GCC 12's AVX-512 headers initialise their "undefined" vectors from themselves, which its own
// -Wuninitialized then reports wherever they are inlined (GCC bug 105593, fixed in GCC 13).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#define TINYGPT_TARGET_BF16 __attribute__((target("avx512bf16")))
#define TINYGPT_TARGET_VNNI __attribute__((target("avx512vnni")))

namespace tinygpt::weight_kernels {
namespace {

// The loops over a register block's rows carry `#pragma GCC unroll 4`: unrolled that early, the
// accumulators are registers. Without it GCC 12 kept them in a stack array and stored every one
// of them at every step (bf16 prefill ran at half its speed, q8_0 decode well below bandwidth).
constexpr int kTileCols = 512;          // columns summed per tile before the lanes are added up
constexpr int kTileRows = 8;            // rows of W widened at a time (16 KiB of f32)
constexpr int kWidenTileFromRows = 24;  // as on AVX2 (measured there)
constexpr int kRowsOfX = 4;             // register blocks: 4 × 4 accumulators of 32 registers
constexpr int kRowsOfW = 4;

int smaller(int a, int b) {
    return a < b ? a : b;
}
__mmask16 first_lanes16(int count) {
    return static_cast<__mmask16>((1u << count) - 1u);
}
__mmask32 first_lanes32(int count) {
    return count >= 32 ? ~__mmask32{0} : static_cast<__mmask32>((1u << count) - 1u);
}

// Sixteen weights from p widened to f32; the masked form reads only the first lanes (tails).
struct Bf16 {
    using Element = uint16_t;
    static constexpr bool kFromMemory = true;
    static __m512 load16(const uint16_t* p, __mmask16 m) {
        const __m256i h = _mm256_maskz_loadu_epi16(m, p);
        return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
    }
};
struct F16 {
    using Element = uint16_t;
    static constexpr bool kFromMemory = true;
    static __m512 load16(const uint16_t* p, __mmask16 m) {
        return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, p));
    }
};
struct F32 {
    using Element = float;
    static constexpr bool kFromMemory = false;  // a widened tile, in L1
    static __m512 load16(const float* p, __mmask16 m) { return _mm512_maskz_loadu_ps(m, p); }
};

// The sums of four 8-lane accumulators, each by the same tree: ((l0+l1)+(l2+l3)) +
// ((l4+l5)+(l6+l7)) (the AVX2 path's).
__m128 reduce4(__m256 a, __m256 b, __m256 c, __m256 d) {
    const __m256 ab = _mm256_hadd_ps(a, b);
    const __m256 cd = _mm256_hadd_ps(c, d);
    const __m256 abcd = _mm256_hadd_ps(ab, cd);
    return _mm_add_ps(_mm256_castps256_ps128(abcd), _mm256_extractf128_ps(abcd, 1));
}
// 16 lanes: lanes l and l + 8 first, then the tree above.
__m256 fold(__m512 v) {
    const __m256 high = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1));
    return _mm256_add_ps(_mm512_castps512_ps256(v), high);
}
__m128 reduce4(__m512 a, __m512 b, __m512 c, __m512 d) {
    return reduce4(fold(a), fold(b), fold(c), fold(d));
}

template <int R, int C>
__attribute__((always_inline)) inline void store_sums(float* out, const __m512 (&acc)[R][C]) {
    const __m512 zero = _mm512_setzero_ps();
#pragma GCC unroll 4
    for (int i = 0; i < R; ++i)
        _mm_storeu_ps(out + 4 * i, reduce4(acc[i][0], C > 1 ? acc[i][C > 1 ? 1 : 0] : zero,
                                           C > 2 ? acc[i][C > 2 ? 2 : 0] : zero,
                                           C > 3 ? acc[i][C > 3 ? 3 : 0] : zero));
}

// ---- f16, and bf16 without BF16 instructions: f32 FMAs ----

// out[i][j] = Σ_{k < len} x[i·xs + k] · w[j·ws + k] for i < R, j < C.
template <int R, int C, typename W>
void float_block(float* out, const float* x, size_t xs, const typename W::Element* w, size_t ws,
                 int len) {
    __m512 acc[R][C];
#pragma GCC unroll 4
    for (int i = 0; i < R; ++i)
#pragma GCC unroll 4
        for (int j = 0; j < C; ++j) acc[i][j] = _mm512_setzero_ps();
    for (int k = 0; k < len; k += 16) {
        const __mmask16 m = first_lanes16(smaller(16, len - k));
        if (W::kFromMemory && k % 32 == 0)
#pragma GCC unroll 4
            for (int j = 0; j < C; ++j)
                _mm_prefetch(reinterpret_cast<const char*>(w + (j + kRowsOfW) * ws + k),
                             _MM_HINT_T0);
        __m512 xv[R];
#pragma GCC unroll 4
        for (int i = 0; i < R; ++i) {
            xv[i] = _mm512_maskz_loadu_ps(m, x + i * xs + k);
            __asm__("" : "+v"(xv[i]));  // kept in registers, not folded into the FMAs
        }
#pragma GCC unroll 4
        for (int j = 0; j < C; ++j) {
            __m512 wv = W::load16(w + j * ws + k, m);
            __asm__("" : "+v"(wv));
#pragma GCC unroll 4
            for (int i = 0; i < R; ++i) acc[i][j] = _mm512_fmadd_ps(xv[i], wv, acc[i][j]);
        }
    }
    store_sums<R, C>(out, acc);
}

template <typename W>
using FloatBlockFn = void (*)(float*, const float*, size_t, const typename W::Element*, size_t,
                              int);
template <typename W, int R>
FloatBlockFn<W> float_block_for(int c) {
    return c == 1   ? float_block<R, 1, W>
           : c == 2 ? float_block<R, 2, W>
           : c == 3 ? float_block<R, 3, W>
                    : float_block<R, 4, W>;
}
template <typename W>
FloatBlockFn<W> float_block_for(int r, int c) {
    return r == 1   ? float_block_for<W, 1>(c)
           : r == 2 ? float_block_for<W, 2>(c)
           : r == 3 ? float_block_for<W, 3>(c)
                    : float_block_for<W, 4>(c);
}

template <typename W>
void widen(float* out, const uint16_t* in, int len) {
    for (int k = 0; k < len; k += 16) {
        const __mmask16 m = first_lanes16(smaller(16, len - k));
        _mm512_mask_storeu_ps(out + k, m, W::load16(in + k, m));
    }
}

#include "kernels/weight_matmul/block_loops.h"

// ---- bf16 with AVX512_BF16: vdpbf16ps ----

// x[0, len) rounded to bf16 (nearest even; vcvtne2ps2bf16 flushes denormals), zero-padded to a
// multiple of 32.
TINYGPT_TARGET_BF16 void round_to_bf16(uint16_t* out, const float* x, int len) {
    for (int k = 0; k < len; k += 32) {
        const int left = len - k;
        const __m512 lo = _mm512_maskz_loadu_ps(first_lanes16(smaller(16, left)), x + k);
        const __m512 hi =
            left > 16 ? _mm512_maskz_loadu_ps(first_lanes16(smaller(16, left - 16)), x + k + 16)
                      : _mm512_setzero_ps();
        _mm512_storeu_si512(out + k, (__m512i)_mm512_cvtne2ps_pbh(hi, lo));
    }
}

// out[i][j] = Σ_{k < len} xb[i·xs + k] · w[j·ws + k], x already bf16: each lane takes a pair
// of columns per step of 32.
template <int R, int C>
TINYGPT_TARGET_BF16 void bf16_dot_block(float* out, const uint16_t* xb, size_t xs,
                                        const uint16_t* w, size_t ws, int len) {
    __m512 acc[R][C];
#pragma GCC unroll 4
    for (int i = 0; i < R; ++i)
#pragma GCC unroll 4
        for (int j = 0; j < C; ++j) acc[i][j] = _mm512_setzero_ps();
    for (int k = 0; k < len; k += 32) {
        const __mmask32 m = first_lanes32(len - k);
#pragma GCC unroll 4
        for (int j = 0; j < C; ++j)  // one line of each row per step
            _mm_prefetch(reinterpret_cast<const char*>(w + (j + kRowsOfW) * ws + k), _MM_HINT_T0);
        __m512i xv[R];
#pragma GCC unroll 4
        for (int i = 0; i < R; ++i) {
            xv[i] = _mm512_loadu_si512(xb + i * xs + k);  // zero-padded to 32
            __asm__("" : "+v"(xv[i]));
        }
#pragma GCC unroll 4
        for (int j = 0; j < C; ++j) {
            __m512i wv = _mm512_maskz_loadu_epi16(m, w + j * ws + k);
            __asm__("" : "+v"(wv));
#pragma GCC unroll 4
            for (int i = 0; i < R; ++i)
                acc[i][j] = _mm512_dpbf16_ps(acc[i][j], (__m512bh)xv[i], (__m512bh)wv);
        }
    }
    store_sums<R, C>(out, acc);
}

using Bf16DotFn = void (*)(float*, const uint16_t*, size_t, const uint16_t*, size_t, int);
template <int R>
Bf16DotFn bf16_dot_block_for(int c) {
    return c == 1   ? bf16_dot_block<R, 1>
           : c == 2 ? bf16_dot_block<R, 2>
           : c == 3 ? bf16_dot_block<R, 3>
                    : bf16_dot_block<R, 4>;
}
Bf16DotFn bf16_dot_block_for(int r, int c) {
    return r == 1   ? bf16_dot_block_for<1>(c)
           : r == 2 ? bf16_dot_block_for<2>(c)
           : r == 3 ? bf16_dot_block_for<3>(c)
                    : bf16_dot_block_for<4>(c);
}

void float_rows_bf16_dot(float* y, const float* x, int n, const WeightMatrix& w, int row_begin,
                         int row_end) {
    bf16_dot_rows<kRowsOfX>(y, x, n, w, row_begin, row_end, round_to_bf16,
                            [](int r, int c) { return bf16_dot_block_for(r, c); });
}

// ---- q8_0 with VNNI ----

float block_scale(const uint8_t* block) {
    uint16_t h;
    __builtin_memcpy(&h, block, 2);
    return _cvtsh_ss(h);
}

// As the AVX2 kernel (avx2.cpp: |w| times x signed by w), with vpdpbusd summing each lane's four
// products in one instruction.
template <int R, int C>
TINYGPT_TARGET_VNNI void q8_0_vnni_block(float* out, const int8_t* xq, const float* xd, size_t xs,
                                         size_t xds, const uint8_t* w, size_t ws, int blocks,
                                         bool prefetch) {
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
                _mm_prefetch(reinterpret_cast<const char*>(block + kRowsOfW * ws), _MM_HINT_T0);
            const __m256i wv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + 2));
            const __m256i abs_w = _mm256_sign_epi8(wv, wv);  // −128 reads as 128 (unsigned)
            const __m256 scale_w = _mm256_set1_ps(block_scale(block));
#pragma GCC unroll 4
            for (int i = 0; i < R; ++i) {
                const __m256i products =
                    _mm256_dpbusd_epi32(_mm256_setzero_si256(), abs_w, _mm256_sign_epi8(xv[i], wv));
                const __m256 scale = _mm256_mul_ps(scale_w, _mm256_broadcast_ss(xd + i * xds + b));
                acc[i][j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(products), scale, acc[i][j]);
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
template <int R>
Q8BlockFn q8_0_vnni_block_for(int c) {
    return c == 1   ? q8_0_vnni_block<R, 1>
           : c == 2 ? q8_0_vnni_block<R, 2>
           : c == 3 ? q8_0_vnni_block<R, 3>
                    : q8_0_vnni_block<R, 4>;
}
Q8BlockFn q8_0_vnni_block_for(int r, int c) {
    return r == 1   ? q8_0_vnni_block_for<1>(c)
           : r == 2 ? q8_0_vnni_block_for<2>(c)
           : r == 3 ? q8_0_vnni_block_for<3>(c)
                    : q8_0_vnni_block_for<4>(c);
}

void q8_0_vnni_rows(float* y, const QuantisedRows& x, int n, const WeightMatrix& w, int row_begin,
                    int row_end) {
    q8_0_rows_of<kRowsOfX, kRowsOfW>(y, x, n, w, row_begin, row_end,
                                     static_cast<Q8BlockFn (*)(int, int)>(q8_0_vnni_block_for));
}

IsaKernels make_kernels() {
    __builtin_cpu_init();
    const IsaKernels& avx2 = avx2_kernels();
    const bool bf16 = __builtin_cpu_supports("avx512bf16");
    const bool vnni = __builtin_cpu_supports("avx512vnni");
    return {"avx512",
            bf16,
            bf16 ? float_rows_bf16_dot : float_rows,
            vnni ? q8_0_vnni_rows : avx2.q8_0_rows,
            avx2.quantise_rows,
            avx2.widen_rows};
}

}  // namespace

const IsaKernels& avx512_kernels() {
    static const IsaKernels kernels = make_kernels();
    return kernels;
}

}  // namespace tinygpt::weight_kernels

#endif
