// Products of f32 activations with weights in their stored type (f32, bf16, f16, Q8_0), with f32
// accumulation: the Linear layers of inference (decode: one row; prefill and an expert's rows:
// a few to a few hundred). The weight is a Linear weight [rows = out, cols = in], row-major.
//
// Implementations per instruction set live in kernels/weight_matmul/ and are chosen at run time
// (one x86-64 binary runs everywhere); the portable C++ path is the reference the tests check
// the others against.
#pragma once
#include <cstddef>

#include "model/weight_dtype.h"

namespace tinygpt {

struct WeightMatrix {
    const void* data = nullptr;  // rows × dtype_row_bytes(dtype, cols) bytes
    WeightDtype dtype = WeightDtype::F32;
    int rows = 0;  // output features
    int cols = 0;  // input features (Q8_0: a multiple of 32)
};

// y[n, w.rows] = x[n, w.cols] · Wᵀ (+ bias[w.rows] when not null). Rows of x and y are packed
// (strides w.cols and w.rows). Every output is summed in a fixed order whatever the thread count
// (same bits on 1 or 16 threads); small products run on one thread.
void weight_matmul(float* y, const float* x, int n, const WeightMatrix& w,
                   const float* bias = nullptr);

// out[count, w.cols] = rows first .. first+count-1 of W widened to f32 (embedding lookups).
void weight_rows_to_f32(float* out, const WeightMatrix& w, int first, int count);

}  // namespace tinygpt
