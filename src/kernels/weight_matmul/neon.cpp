// The AArch64 path of weight_matmul (kernels.h): Advanced SIMD, which every AArch64 CPU has, plus
// the dot-product (SDOT) and BF16 (BFDOT) instructions where the CPU reports them (enabled per
// function, so one binary runs on any AArch64).
//
// The scheme is the AVX2 path's (avx2.cpp), with each 8-lane accumulator held as two 4-lane
// registers: tiles of 512 columns, the lanes added in the same tree, the tiles in order, a row's
// bits independent of n. f32 FMAs are fused on both, so the bf16 / f16 products (without BFDOT)
// and the q8_0 products are the AVX2 path's bits. With BFDOT, bf16 products round the
// activations to bf16 first, as on AVX-512 BF16. Activation quantisation and widening are the
// portable path's. (Checked under qemu-aarch64, with and without SDOT / BF16: the same bits as
// AVX2 where said, and within the tests' bounds.)
#if defined(__aarch64__)
#include <arm_neon.h>

#include <cstdint>

#include "kernels/weight_matmul/kernels.h"

#if defined(__linux__)
#include <sys/auxv.h>
#elif defined(__APPLE__)
#include <sys/sysctl.h>
#endif

// GCC declares the dot-product and BF16 intrinsics for functions that target them; Clang's
// arm_neon.h (up to at least 14) only when the whole file does (-march=...+dotprod+bf16).
#if defined(__clang__) && !defined(__ARM_FEATURE_BF16)
#define TINYGPT_NEON_BFDOT 0
#else
#define TINYGPT_NEON_BFDOT 1
#endif
#if defined(__clang__) && !defined(__ARM_FEATURE_DOTPROD)
#define TINYGPT_NEON_SDOT 0
#else
#define TINYGPT_NEON_SDOT 1
#endif

#if defined(__clang__)
#define TINYGPT_TARGET_DOTPROD __attribute__((target("dotprod")))
#define TINYGPT_TARGET_BF16 __attribute__((target("bf16")))
#else
#define TINYGPT_TARGET_DOTPROD __attribute__((target("arch=armv8.2-a+dotprod")))
#define TINYGPT_TARGET_BF16 __attribute__((target("arch=armv8.2-a+bf16")))
#endif

namespace tinygpt::weight_kernels {
namespace {

constexpr int kTileCols = 512;          // columns summed per tile before the lanes are added up
constexpr int kTileRows = 8;            // rows of W widened at a time (16 KiB of f32)
constexpr int kWidenTileFromRows = 24;  // as on AVX2 (measured there)
constexpr int kRowsOfX = 2;             // register blocks: 2 × 4 accumulators of 2 registers each
constexpr int kRowsOfW = 4;

int smaller(int a, int b) {
    return a < b ? a : b;
}

struct F8 {  // 8 f32 lanes
    float32x4_t lo, hi;
};
F8 zero8() {
    return {vdupq_n_f32(0.0f), vdupq_n_f32(0.0f)};
}
F8 fma8(F8 acc, F8 x, F8 w) {
    return {vfmaq_f32(acc.lo, x.lo, w.lo), vfmaq_f32(acc.hi, x.hi, w.hi)};
}

float f16_to_f32(uint16_t h) {
    __fp16 v;
    __builtin_memcpy(&v, &h, 2);
    return v;
}

// Eight weights from p widened to f32, and one (tails).
struct Bf16 {
    using Element = uint16_t;
    static F8 load8(const uint16_t* p) {
        const uint16x8_t h = vld1q_u16(p);
        return {vreinterpretq_f32_u32(vshll_n_u16(vget_low_u16(h), 16)),
                vreinterpretq_f32_u32(vshll_high_n_u16(h, 16))};
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
    static F8 load8(const uint16_t* p) {
        const float16x8_t h = vreinterpretq_f16_u16(vld1q_u16(p));
        return {vcvt_f32_f16(vget_low_f16(h)), vcvt_high_f32_f16(h)};
    }
    static float load1(const uint16_t* p) { return f16_to_f32(*p); }
};
struct F32 {
    using Element = float;
    static F8 load8(const float* p) { return {vld1q_f32(p), vld1q_f32(p + 4)}; }
    static float load1(const float* p) { return *p; }
};

// The sums of four accumulators, each by AVX2's tree: ((l0+l1)+(l2+l3)) + ((l4+l5)+(l6+l7)).
float32x4_t reduce4(F8 a, F8 b, F8 c, F8 d) {
    const float32x4_t ab = vpaddq_f32(vpaddq_f32(a.lo, a.hi), vpaddq_f32(b.lo, b.hi));
    const float32x4_t cd = vpaddq_f32(vpaddq_f32(c.lo, c.hi), vpaddq_f32(d.lo, d.hi));
    return vpaddq_f32(ab, cd);  // a0123 + a4567, b…, c…, d…
}

template <int R, int C>
void store_sums(float* out, const F8 (&acc)[R][C]) {
    const F8 zero = zero8();
    for (int i = 0; i < R; ++i)
        vst1q_f32(out + 4 * i, reduce4(acc[i][0], C > 1 ? acc[i][C > 1 ? 1 : 0] : zero,
                                       C > 2 ? acc[i][C > 2 ? 2 : 0] : zero,
                                       C > 3 ? acc[i][C > 3 ? 3 : 0] : zero));
}

// ---- bf16 and f16 by f32 FMAs ----

// out[i][j] = Σ_{k < len} x[i·xs + k] · w[j·ws + k] for i < R, j < C.
template <int R, int C, typename W>
void float_block(float* out, const float* x, size_t xs, const typename W::Element* w, size_t ws,
                 int len) {
    F8 acc[R][C];
    for (int i = 0; i < R; ++i)
        for (int j = 0; j < C; ++j) acc[i][j] = zero8();
    int k = 0;
    for (; k + 8 <= len; k += 8) {
        F8 xv[R];
        for (int i = 0; i < R; ++i) xv[i] = F32::load8(x + i * xs + k);
        for (int j = 0; j < C; ++j) {
            const F8 wv = W::load8(w + j * ws + k);
            for (int i = 0; i < R; ++i) acc[i][j] = fma8(acc[i][j], xv[i], wv);
        }
    }
    store_sums<R, C>(out, acc);
    for (; k < len; ++k)
        for (int i = 0; i < R; ++i)
            for (int j = 0; j < C; ++j)
                out[4 * i + j] =
                    __builtin_fmaf(x[i * xs + k], W::load1(w + j * ws + k), out[4 * i + j]);
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
    return r == 1 ? float_block_for<W, 1>(c) : float_block_for<W, 2>(c);
}

template <typename W>
void widen(float* out, const uint16_t* in, int len) {
    int k = 0;
    for (; k + 8 <= len; k += 8) {
        const F8 v = W::load8(in + k);
        vst1q_f32(out + k, v.lo);
        vst1q_f32(out + k + 4, v.hi);
    }
    for (; k < len; ++k) out[k] = W::load1(in + k);
}

#include "kernels/weight_matmul/block_loops.h"

// ---- bf16 with BFDOT ----
#if TINYGPT_NEON_BFDOT

// x[0, len) rounded to bf16 (BFCVTN: nearest even), zero-padded to a multiple of 16.
TINYGPT_TARGET_BF16 void round_to_bf16(uint16_t* out, const float* x, int len) {
    for (int k = 0; k < len; k += 16) {
        float part[16] = {};
        for (int t = 0; t < 16 && k + t < len; ++t) part[t] = x[k + t];
        for (int h = 0; h < 16; h += 8) {
            const bfloat16x8_t v = vcvtq_high_bf16_f32(vcvtq_low_bf16_f32(vld1q_f32(part + h)),
                                                       vld1q_f32(part + h + 4));
            vst1q_u16(out + k + h, vreinterpretq_u16_bf16(v));
        }
    }
}

// out[i][j] = Σ_{k < len} xb[i·xs + k] · w[j·ws + k], x already bf16: per step of 16 columns,
// each of the 8 lanes takes a pair.
template <int R, int C>
TINYGPT_TARGET_BF16 void bf16_dot_block(float* out, const uint16_t* xb, size_t xs,
                                        const uint16_t* w, size_t ws, int len) {
    F8 acc[R][C];
    for (int i = 0; i < R; ++i)
        for (int j = 0; j < C; ++j) acc[i][j] = zero8();
    for (int k = 0; k < len; k += 16) {
        const int left = len - k;
        bfloat16x8_t xv[R][2];
        for (int i = 0; i < R; ++i)  // zero-padded to 16
            for (int h = 0; h < 2; ++h)
                xv[i][h] = vreinterpretq_bf16_u16(vld1q_u16(xb + i * xs + k + 8 * h));
        for (int j = 0; j < C; ++j) {
            uint16_t tail[16] = {};
            const uint16_t* wp = w + j * ws + k;
            if (left < 16) {
                for (int t = 0; t < left; ++t) tail[t] = wp[t];
                wp = tail;
            }
            const bfloat16x8_t w0 = vreinterpretq_bf16_u16(vld1q_u16(wp));
            const bfloat16x8_t w1 = vreinterpretq_bf16_u16(vld1q_u16(wp + 8));
            for (int i = 0; i < R; ++i) {
                acc[i][j].lo = vbfdotq_f32(acc[i][j].lo, xv[i][0], w0);
                acc[i][j].hi = vbfdotq_f32(acc[i][j].hi, xv[i][1], w1);
            }
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

void float_rows_bf16_dot(float* y, const float* x, int n, const WeightMatrix& w, int row_begin,
                         int row_end) {
    bf16_dot_rows<kRowsOfX>(y, x, n, w, row_begin, row_end, round_to_bf16, [](int r, int c) {
        return r == 1 ? bf16_dot_block_for<1>(c) : bf16_dot_block_for<2>(c);
    });
}
#endif

// ---- q8_0 ----

// One block half's exact integer products, four per lane (bytes 4l .. 4l+3 in lane l): the
// lanes of AVX2's vpmaddubsw + vpmaddwd.
int32x4_t plain_quarter(int8x16_t w, int8x16_t x) {
    const int32x4_t low = vpaddlq_s16(vmull_s8(vget_low_s8(w), vget_low_s8(x)));
    const int32x4_t high = vpaddlq_s16(vmull_high_s8(w, x));
    return vpaddq_s32(low, high);
}
#if TINYGPT_NEON_SDOT
TINYGPT_TARGET_DOTPROD int32x4_t sdot_quarter(int8x16_t w, int8x16_t x) {
    return vdotq_s32(vdupq_n_s32(0), w, x);
}
#else
int32x4_t sdot_quarter(int8x16_t w, int8x16_t x) {  // never called: see TINYGPT_NEON_SDOT
    return plain_quarter(w, x);
}
#endif

// out[i][j] = Σ_blocks scale_w · scale_x · (q_w · q_x) for R rows of quantised x and C rows of W.
// Written once for both dot products: the SDOT one must carry its target attribute itself, so
// that vdotq_s32 inlines into its loop.
#define TINYGPT_Q8_0_BLOCK(NAME, TARGET, QUARTER)                                            \
    template <int R, int C>                                                                  \
    TARGET void NAME(float* out, const int8_t* xq, const float* xd, size_t xs, size_t xds,   \
                     const uint8_t* w, size_t ws, int blocks, bool /*first_rows_of_x*/) {    \
        F8 acc[R][C];                                                                        \
        for (int i = 0; i < R; ++i)                                                          \
            for (int j = 0; j < C; ++j) acc[i][j] = zero8();                                 \
        for (int b = 0; b < blocks; ++b) {                                                   \
            int8x16_t x0[R], x1[R];                                                          \
            for (int i = 0; i < R; ++i) {                                                    \
                x0[i] = vld1q_s8(xq + i * xs + b * kBlock);                                  \
                x1[i] = vld1q_s8(xq + i * xs + b * kBlock + 16);                             \
            }                                                                                \
            for (int j = 0; j < C; ++j) {                                                    \
                const uint8_t* block = w + j * ws + b * kBlockBytes;                         \
                uint16_t h;                                                                  \
                __builtin_memcpy(&h, block, 2);                                              \
                const float scale_w = f16_to_f32(h);                                         \
                const int8x16_t w0 = vld1q_s8(reinterpret_cast<const int8_t*>(block + 2));   \
                const int8x16_t w1 = vld1q_s8(reinterpret_cast<const int8_t*>(block + 18));  \
                for (int i = 0; i < R; ++i) {                                                \
                    const float scale = scale_w * xd[i * xds + b];                           \
                    acc[i][j].lo =                                                           \
                        vfmaq_n_f32(acc[i][j].lo, vcvtq_f32_s32(QUARTER(w0, x0[i])), scale); \
                    acc[i][j].hi =                                                           \
                        vfmaq_n_f32(acc[i][j].hi, vcvtq_f32_s32(QUARTER(w1, x1[i])), scale); \
                }                                                                            \
            }                                                                                \
        }                                                                                    \
        store_sums<R, C>(out, acc);                                                          \
    }
TINYGPT_Q8_0_BLOCK(q8_0_block_plain, , plain_quarter)
TINYGPT_Q8_0_BLOCK(q8_0_block_sdot, TINYGPT_TARGET_DOTPROD, sdot_quarter)
#undef TINYGPT_Q8_0_BLOCK

// The last argument (AVX2 prefetches the next rows of W on the first rows of x) is not used: the
// rows are read in order, as streams the cores' prefetchers follow.
using Q8BlockFn = void (*)(float*, const int8_t*, const float*, size_t, size_t, const uint8_t*,
                           size_t, int, bool);
template <int R>
Q8BlockFn q8_0_block_for(int c, bool sdot) {
    if (sdot)
        return c == 1   ? q8_0_block_sdot<R, 1>
               : c == 2 ? q8_0_block_sdot<R, 2>
               : c == 3 ? q8_0_block_sdot<R, 3>
                        : q8_0_block_sdot<R, 4>;
    return c == 1   ? q8_0_block_plain<R, 1>
           : c == 2 ? q8_0_block_plain<R, 2>
           : c == 3 ? q8_0_block_plain<R, 3>
                    : q8_0_block_plain<R, 4>;
}

void q8_0_rows_sdot(float* y, const QuantisedRows& x, int n, const WeightMatrix& w, int row_begin,
                    int row_end) {
    q8_0_rows_of<kRowsOfX, kRowsOfW>(y, x, n, w, row_begin, row_end, [](int r, int c) {
        return r == 1 ? q8_0_block_for<1>(c, true) : q8_0_block_for<2>(c, true);
    });
}
void q8_0_rows_plain(float* y, const QuantisedRows& x, int n, const WeightMatrix& w, int row_begin,
                     int row_end) {
    q8_0_rows_of<kRowsOfX, kRowsOfW>(y, x, n, w, row_begin, row_end, [](int r, int c) {
        return r == 1 ? q8_0_block_for<1>(c, false) : q8_0_block_for<2>(c, false);
    });
}

#if defined(__linux__)
constexpr unsigned long kHwcapAsimdDotProduct = 1ul << 20;  // HWCAP_ASIMDDP
constexpr unsigned long kHwcap2Bf16 = 1ul << 14;            // HWCAP2_BF16
bool cpu_has_dot_product() {
    return (getauxval(AT_HWCAP) & kHwcapAsimdDotProduct) != 0;
}
bool cpu_has_bf16() {
    return (getauxval(AT_HWCAP2) & kHwcap2Bf16) != 0;
}
#elif defined(__APPLE__)
bool sysctl_flag(const char* name) {
    int value = 0;
    size_t size = sizeof value;
    return sysctlbyname(name, &value, &size, nullptr, 0) == 0 && value != 0;
}
bool cpu_has_dot_product() {
    return sysctl_flag("hw.optional.arm.FEAT_DotProd");
}
bool cpu_has_bf16() {
    return sysctl_flag("hw.optional.arm.FEAT_BF16");
}
#else
bool cpu_has_dot_product() {
    return false;
}
bool cpu_has_bf16() {
    return false;
}
#endif

IsaKernels make_kernels() {
    const IsaKernels& portable = portable_kernels();
    const bool bf16 = TINYGPT_NEON_BFDOT && cpu_has_bf16();
    return {
        "neon", bf16,
#if TINYGPT_NEON_BFDOT
            bf16 ? float_rows_bf16_dot : float_rows,
#else
            float_rows,
#endif
            TINYGPT_NEON_SDOT &&cpu_has_dot_product() ? q8_0_rows_sdot : q8_0_rows_plain,
            portable.quantise_rows, portable.widen_rows
    };
}

}  // namespace

const IsaKernels& neon_kernels() {
    static const IsaKernels kernels = make_kernels();
    return kernels;
}

}  // namespace tinygpt::weight_kernels

#endif
