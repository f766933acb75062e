// The per-instruction-set kernels behind weight_matmul (kernels/weight_matmul.h): one table of
// functions per path (portable.cpp, avx2.cpp, avx512.cpp, neon.cpp), chosen by dispatch.cpp.
// weight_matmul.cpp splits the output rows into fixed chunks for the threads and calls a table's
// functions on each chunk.
//
// What every path promises: an output's bits depend only on its row of x, its row of W and the
// path; not on n, on the chunk of rows it is computed in, nor on the thread. That is what makes
// the products the same on any thread count. Paths differ from each other by rounding only.
//
// The SIMD files are compiled with their instruction sets enabled (CMakeLists.txt), so they must
// not define anything the linker could share with other files (an inline function or template
// instantiated from a header would be picked at random among its copies, and could carry AVX-512
// into code that runs on any CPU): their code lives in anonymous namespaces and uses intrinsics
// and builtins only, plus the table below.
#pragma once
#include <cstdint>

#include "kernels/weight_matmul.h"

namespace tinygpt::weight_kernels {

inline constexpr int kBlock = 32;       // Q8_0 block: 32 quants and one scale
inline constexpr int kBlockBytes = 34;  // f16 scale + 32 int8

// Activations quantised for the integer dot products of Q8_0: per row, cols int8 quants and
// cols / 32 f32 scales (value = scale · quant). The scale stays f32, unlike ggml's f16 copy: more
// exact, and free.
struct QuantisedRows {
    const int8_t* quants = nullptr;  // [n, cols]
    const float* scales = nullptr;   // [n, cols / 32]
};

struct IsaKernels {
    const char* name;
    // Whether float_rows rounds the activations of bf16 products to bf16 (bf16 dot products:
    // AVX-512 BF16, Arm BFDOT); otherwise products are exact before the f32 accumulation.
    bool bf16_activations;
    // y[i, j] = Σ_k x[i, k] · W[j, k] for i < n and row_begin ≤ j < row_end; W is bf16 or f16;
    // y has row stride w.rows. No bias.
    void (*float_rows)(float* y, const float* x, int n, const WeightMatrix& w, int row_begin,
                       int row_end);
    // The same for Q8_0 weights, with activations quantised by quantise_rows.
    void (*q8_0_rows)(float* y, const QuantisedRows& x, int n, const WeightMatrix& w, int row_begin,
                      int row_end);
    // Quantises `count` activations (a multiple of 32): per block of 32, amax = max |x|,
    // scale = amax / 127, quant = x · (1 / scale) rounded to nearest even (all 0 when the scale is
    // below the smallest normal float, 1 / scale would overflow);
    // a block holding a NaN or an infinity gets scale NaN and quants 0. Every path gives the same
    // bits (the operations are exact or single IEEE roundings).
    void (*quantise_rows)(int8_t* quants, float* scales, const float* x, int64_t count);
    // out[count, w.cols] = rows first .. first + count - 1 widened to f32 (exact; any dtype).
    void (*widen_rows)(float* out, const WeightMatrix& w, int first, int count);
};

const IsaKernels& portable_kernels();
#if defined(__x86_64__) || defined(_M_X64)
const IsaKernels& avx2_kernels();
const IsaKernels& avx512_kernels();
#endif
#if defined(__aarch64__)
const IsaKernels& neon_kernels();
#endif

// The table in use (dispatch.cpp).
const IsaKernels& active_kernels();

}  // namespace tinygpt::weight_kernels
