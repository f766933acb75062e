// Products of f32 activations with weights in their stored type (f32, bf16, f16, Q8_0), with f32
// accumulation: the Linear layers of inference (decode: one row; prefill and an expert's rows:
// a few to a few hundred). The weight is a Linear weight [rows = out, cols = in], row-major.
//
// Implementations per instruction set live in kernels/weight_matmul/ and are chosen at run time
// (one x86-64 binary runs everywhere); the portable C++ path is the reference the tests check
// the others against.
#pragma once
#include <cstddef>
#include <string>
#include <vector>

#include "model/weight_dtype.h"

namespace tinygpt {

struct WeightMatrix {
    const void* data = nullptr;  // rows × dtype_row_bytes(dtype, cols) bytes
    WeightDtype dtype = WeightDtype::F32;
    int rows = 0;  // output features
    int cols = 0;  // input features (Q8_0: a multiple of 32)
};

// y[n, w.rows] = activation(x[n, w.cols] · Wᵀ (+ bias[w.rows] when not null)). Rows of x and y are
// packed (strides w.cols and w.rows). Every output is summed in a fixed order whatever the thread
// count (same bits on 1 or 16 threads); small products run on one thread.
// - f32: gemv_rows for n = 1 (kernels/gemv.h), the BLAS (blas_sgemm) for n > 1, on fixed
//   chunks of rows.
// - bf16, f16: the weights are widened exactly to f32 and multiplied in f32, except on CPUs with
//   bf16 dot products (AVX-512 BF16, Arm BF16), where bf16 products round the activations to
//   bf16 first, as llama.cpp does there (relative error per product ≤ 2^-9).
// - q8_0: the activations are quantised to 8 bits per block of 32 (scale max|x| / 127, kept in
//   f32; rounding to nearest even) and each block's dot product is an exact integer, scaled by
//   the two scales, as llama.cpp's q8_0 × q8_0 product. A block of activations that holds a NaN or
//   an infinity gives NaN outputs.
// For bf16, f16 and q8_0 an output's bits do not depend on n either: a row of a prefill gives
// what the same row gives alone. Instruction sets differ by rounding only (AVX2 and NEON without
// bf16 dot products give the same bits).
// What weight_matmul applies to each output after the bias: Gelu runs on each thread's chunk of
// outputs as soon as it is computed, while it is still in cache, instead of as a pass of its own
// over all of y (the same bits as gelu_in_place over y afterwards).
enum class Activation { None, Gelu };

void weight_matmul(float* y, const float* x, int n, const WeightMatrix& w,
                   const float* bias = nullptr, Activation activation = Activation::None);

// out[count, w.cols] = rows first .. first+count-1 of W widened to f32 (embedding lookups).
void weight_rows_to_f32(float* out, const WeightMatrix& w, int first, int count);

// The instruction-set path of the bf16 / f16 / q8_0 kernels: "avx512", "avx2", "neon" or
// "portable" (plain C++, the reference). The best one the CPU has is chosen at the first call;
// the environment variable TINYGPT_WEIGHT_ISA=<name> picks another (benchmarks).
const char* weight_kernel_isa();
// The paths this build can run on this CPU, best first; "portable" is always last.
std::vector<std::string> available_weight_kernel_isas();
// Switches to a path (tests and benchmarks; not while another thread runs a product). Returns
// false, and changes nothing, for a path this build or CPU cannot run.
bool set_weight_kernel_isa(const std::string& isa);

}  // namespace tinygpt
