// The portable path of weight_matmul: plain C++, the reference the SIMD paths are tested against
// and the path of CPUs without one. Each output is one call of a dot-product function, so its
// bits cannot depend on n or on the chunk of rows. Eight partial sums let the compiler vectorise
// it where it can.
#include <cmath>
#include <cstring>
#include <type_traits>

#include "kernels/weight_matmul/kernels.h"
#include "util/half.h"

namespace tinygpt::weight_kernels {
namespace {

// f16 → f32 by table: the exact conversion has branches for subnormals, too slow for a loop.
struct F16Table {
    float values[65536];
    F16Table() {
        for (uint32_t h = 0; h < 65536; ++h) values[h] = f16_to_float(static_cast<uint16_t>(h));
    }
};
const float* f16_table() {
    static const F16Table table;
    return table.values;
}

struct Bf16Weights {
    static float at(const uint16_t* row, int k) { return bf16_to_float(row[k]); }
};
struct F16Weights {
    static float at(const uint16_t* row, int k) { return f16_table()[row[k]]; }
};

template <typename Weights>
float dot_float_row(const float* x, const uint16_t* w, int cols) {
    float lanes[8] = {};
    int k = 0;
    for (; k + 8 <= cols; k += 8)
        for (int l = 0; l < 8; ++l) lanes[l] += x[k + l] * Weights::at(w, k + l);
    float sum = ((lanes[0] + lanes[4]) + (lanes[2] + lanes[6])) +
                ((lanes[1] + lanes[5]) + (lanes[3] + lanes[7]));
    for (; k < cols; ++k) sum += x[k] * Weights::at(w, k);
    return sum;
}

// The same sum as dot_float_row<Bf16Weights> (lanes k mod 8, the same final tree), written with
// vector extensions: widening bf16 is a shift, and Clang's WebAssembly SIMD then runs 2.1× faster
// than the scalar form it could not vectorise (GB/s of weights read, measured in Node).
typedef float Float4 __attribute__((vector_size(16)));
typedef uint32_t Uint4 __attribute__((vector_size(16)));
typedef uint16_t Half4 __attribute__((vector_size(8)));

Float4 load_float4(const float* p) {
    Float4 v;
    std::memcpy(&v, p, sizeof v);
    return v;
}

Float4 widen_bf16x4(const uint16_t* p) {
    Half4 h;
    std::memcpy(&h, p, sizeof h);
    const Uint4 bits = __builtin_convertvector(h, Uint4) << 16;
    Float4 f;
    std::memcpy(&f, &bits, sizeof f);
    return f;
}

float dot_bf16_row(const float* x, const uint16_t* w, int cols) {
    Float4 low = {}, high = {};
    int k = 0;
    for (; k + 8 <= cols; k += 8) {
        low += load_float4(x + k) * widen_bf16x4(w + k);
        high += load_float4(x + k + 4) * widen_bf16x4(w + k + 4);
    }
    float lanes[8];
    std::memcpy(lanes, &low, sizeof low);
    std::memcpy(lanes + 4, &high, sizeof high);
    float sum = ((lanes[0] + lanes[4]) + (lanes[2] + lanes[6])) +
                ((lanes[1] + lanes[5]) + (lanes[3] + lanes[7]));
    for (; k < cols; ++k) sum += x[k] * bf16_to_float(w[k]);
    return sum;
}

template <typename Weights>
void float_rows_of(float* y, const float* x, int n, const WeightMatrix& w, int row_begin,
                   int row_end) {
    const auto* weights = static_cast<const uint16_t*>(w.data);
    for (int j = row_begin; j < row_end; ++j) {
        const uint16_t* row = weights + static_cast<size_t>(j) * w.cols;
        for (int i = 0; i < n; ++i) {
            const float* xi = x + static_cast<size_t>(i) * w.cols;
            float& out = y[static_cast<size_t>(i) * w.rows + j];
            if constexpr (std::is_same_v<Weights, Bf16Weights>)
                out = dot_bf16_row(xi, row, w.cols);
            else
                out = dot_float_row<Weights>(xi, row, w.cols);
        }
    }
}

void float_rows(float* y, const float* x, int n, const WeightMatrix& w, int row_begin,
                int row_end) {
    if (w.dtype == WeightDtype::BF16)
        float_rows_of<Bf16Weights>(y, x, n, w, row_begin, row_end);
    else
        float_rows_of<F16Weights>(y, x, n, w, row_begin, row_end);
}

float block_scale(const uint8_t* block) {
    uint16_t h;
    std::memcpy(&h, block, 2);
    return f16_table()[h];
}

// GCC 12 at -O3 with -march=native on a CPU with AVX-VNNI (this project's AMD EPYC) turns this
// signed × signed byte sum into a vpdpbusd, which reads one operand as unsigned: wrong sums (found
// by WeightMatmulPath.Q8_0IsTheProductOfTheQuantisedActivations/portable). x86 runs the
// AVX2/AVX-512 paths anyway; this loop matters where the portable path is the fast one
// (WebAssembly, built by Clang, which vectorises it correctly), so only GCC's vectoriser is turned
// off here.
#if defined(__GNUC__) && !defined(__clang__)
__attribute__((optimize("no-tree-vectorize")))
#endif
int block_dot(const uint8_t* block, const int8_t* xq) {
    int sum = 0;
    for (int t = 0; t < kBlock; ++t) sum += static_cast<int8_t>(block[2 + t]) * xq[t];
    return sum;
}

void q8_0_rows(float* y, const QuantisedRows& x, int n, const WeightMatrix& w, int row_begin,
               int row_end) {
    const int blocks = w.cols / kBlock;
    const auto* weights = static_cast<const uint8_t*>(w.data);
    for (int j = row_begin; j < row_end; ++j) {
        const uint8_t* row = weights + static_cast<size_t>(j) * blocks * kBlockBytes;
        for (int i = 0; i < n; ++i) {
            const int8_t* xq = x.quants + static_cast<size_t>(i) * w.cols;
            const float* xd = x.scales + static_cast<size_t>(i) * blocks;
            float sum = 0.0f;
            for (int b = 0; b < blocks; ++b) {
                const uint8_t* block = row + static_cast<size_t>(b) * kBlockBytes;
                sum += block_scale(block) * xd[b] *
                       static_cast<float>(block_dot(block, xq + b * kBlock));
            }
            y[static_cast<size_t>(i) * w.rows + j] = sum;
        }
    }
}

void quantise_rows(int8_t* quants, float* scales, const float* x, int64_t count) {
    for (int64_t b = 0; b < count / kBlock; ++b) {
        const float* xb = x + b * kBlock;
        int8_t* qb = quants + b * kBlock;
        float amax = 0.0f;
        bool finite = true;
        for (int t = 0; t < kBlock; ++t) {
            const float a = std::fabs(xb[t]);
            finite = finite && a <= 3.40282347e38f;  // false for inf and NaN
            amax = amax > a ? amax : a;
        }
        if (!finite) {
            scales[b] = std::nanf("");
            std::memset(qb, 0, kBlock);
            continue;
        }
        const float d = amax / 127.0f;
        // A scale below the smallest normal float (amax < 1.5e-36) would overflow 1 / d: such a
        // block quantises to zero.
        const float id = d >= 1.17549435e-38f ? 1.0f / d : 0.0f;
        scales[b] = d;
        // |x · id| ≤ 127 up to one rounding, which cannot reach 127.5.
        for (int t = 0; t < kBlock; ++t) qb[t] = static_cast<int8_t>(std::nearbyint(xb[t] * id));
    }
}

void widen_rows(float* out, const WeightMatrix& w, int first, int count) {
    const size_t cols = static_cast<size_t>(w.cols);
    for (int r = 0; r < count; ++r) {
        const size_t row = static_cast<size_t>(first) + r;
        float* o = out + r * cols;
        switch (w.dtype) {
            case WeightDtype::F32:
                std::memcpy(o, static_cast<const float*>(w.data) + row * cols, cols * 4);
                break;
            case WeightDtype::BF16:
            case WeightDtype::F16: {
                const uint16_t* in = static_cast<const uint16_t*>(w.data) + row * cols;
                for (size_t k = 0; k < cols; ++k)
                    o[k] = w.dtype == WeightDtype::BF16 ? bf16_to_float(in[k]) : f16_table()[in[k]];
                break;
            }
            case WeightDtype::Q8_0: {
                const size_t blocks = cols / kBlock;
                const uint8_t* in =
                    static_cast<const uint8_t*>(w.data) + row * blocks * kBlockBytes;
                for (size_t b = 0; b < blocks; ++b) {
                    const uint8_t* block = in + b * kBlockBytes;
                    const float d = block_scale(block);
                    // d has 11 significant bits and a quant 8: the product is exact.
                    for (int t = 0; t < kBlock; ++t)
                        o[b * kBlock + t] =
                            static_cast<float>(static_cast<int8_t>(block[2 + t])) * d;
                }
                break;
            }
        }
    }
}

}  // namespace

const IsaKernels& portable_kernels() {
    static const IsaKernels kernels{"portable", false,         float_rows,
                                    q8_0_rows,  quantise_rows, widen_rows};
    return kernels;
}

}  // namespace tinygpt::weight_kernels
