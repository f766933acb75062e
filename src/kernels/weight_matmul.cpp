// weight_matmul (kernels/weight_matmul.h): the choice of kernel per dtype, the split of the output
// rows into fixed chunks for the threads, the activations' quantisation for Q8_0, and the bias.
// f32 uses what the engine had: gemv_rows for one row, the BLAS (blas_sgemm) for more.
// The kernels per instruction set are in kernels/weight_matmul/.
#include "kernels/weight_matmul.h"

#include <cstring>
#include <vector>

#include "kernels/blas.h"
#include "kernels/gelu.h"
#include "kernels/gemv.h"
#include "kernels/weight_matmul/kernels.h"
#include "util/parallel.h"

namespace tinygpt {
namespace {

// Output rows per thread task. The kernels' results do not depend on the chunks: small chunks
// balance the threads. sgemm's do (its order of summation depends on the shape), so its chunks
// are fixed, and larger: its packing costs per call.
constexpr int kRowsPerTask = 32;
constexpr int kSgemmRowChunk = 64;

bool worth_threads(long work) {
    return work >= kMinParallelMultiplyAdds && !in_parallel() && parallel_threads() > 1;
}

// Runs fn(row_begin, row_end) over fixed chunks of `chunk` rows, on all threads when the work
// pays for it.
template <typename Fn>
void for_each_row_chunk(int rows, int chunk, long work, Fn&& fn) {
    const int chunks = (rows + chunk - 1) / chunk;
    parallel_for(chunks, worth_threads(work) && chunks > 1, [&](long c) {
        const int begin = static_cast<int>(c) * chunk;
        fn(begin, begin + chunk < rows ? begin + chunk : rows);
    });
}

// y[:, begin:end] = x · W[begin:end]ᵀ.
void sgemm_rows(float* y, const float* x, int n, const WeightMatrix& w, int begin, int end) {
    const auto* weights = static_cast<const float*>(w.data);
    blas_sgemm(false, true, n, end - begin, w.cols, 1.0f, x, w.cols,
               weights + static_cast<size_t>(begin) * w.cols, w.cols, 0.0f, y + begin, w.rows);
}

// Outputs [row_begin, row_end) of every row of y (row length `rows`): + bias, then the activation.
void finish_outputs(float* y, int n, int rows, const float* bias, Activation activation,
                    int row_begin, int row_end) {
    for (int i = 0; i < n; ++i) {
        float* yi = y + static_cast<size_t>(i) * rows;
        if (bias)
            for (int j = row_begin; j < row_end; ++j) yi[j] += bias[j];
        if (activation == Activation::Gelu) gelu_in_place(yi + row_begin, row_end - row_begin);
    }
}

// The quantised activations of Q8_0 products, kept between calls: decode quantises one row per
// product, hundreds of times per token. One per thread, for products called from threads.
struct ActivationBuffer {
    std::vector<int8_t> quants;
    std::vector<float> scales;
};

weight_kernels::QuantisedRows quantise_activations(const weight_kernels::IsaKernels& kernels,
                                                   const float* x, int n, int cols) {
    thread_local ActivationBuffer buffer;
    const size_t count = static_cast<size_t>(n) * cols;
    if (buffer.quants.size() < count) {
        buffer.quants.resize(count);
        buffer.scales.resize(count / weight_kernels::kBlock);
    }
    kernels.quantise_rows(buffer.quants.data(), buffer.scales.data(), x,
                          static_cast<int64_t>(count));
    return {buffer.quants.data(), buffer.scales.data()};
}

}  // namespace

void weight_matmul(float* y, const float* x, int n, const WeightMatrix& w, const float* bias,
                   Activation activation) {
    if (n <= 0 || w.rows <= 0) return;
    if (w.cols <= 0) {  // an empty sum
        for (int i = 0; i < n; ++i)
            for (int j = 0; j < w.rows; ++j) y[static_cast<size_t>(i) * w.rows + j] = 0.0f;
        finish_outputs(y, n, w.rows, bias, activation, 0, w.rows);
        return;
    }
    const long work = static_cast<long>(n) * w.rows * w.cols;
    const weight_kernels::IsaKernels& kernels = weight_kernels::active_kernels();
    switch (w.dtype) {
        case WeightDtype::F32:
            if (n == 1) {
                gemv_rows(y, static_cast<const float*>(w.data), w.cols, x, w.rows, w.cols, 1.0f,
                          0.0f);
                finish_outputs(y, 1, w.rows, bias, activation, 0, w.rows);
            } else {
                // Each chunk one single-threaded sgemm call (kernels/blas.h): the same bits on
                // any thread count.
                for_each_row_chunk(w.rows, kSgemmRowChunk, work, [&](int begin, int end) {
                    sgemm_rows(y, x, n, w, begin, end);
                    finish_outputs(y, n, w.rows, bias, activation, begin, end);
                });
            }
            return;
        case WeightDtype::BF16:
        case WeightDtype::F16:
            for_each_row_chunk(w.rows, kRowsPerTask, work, [&](int begin, int end) {
                kernels.float_rows(y, x, n, w, begin, end);
                finish_outputs(y, n, w.rows, bias, activation, begin, end);
            });
            return;
        case WeightDtype::Q8_0: {
            const weight_kernels::QuantisedRows xq = quantise_activations(kernels, x, n, w.cols);
            for_each_row_chunk(w.rows, kRowsPerTask, work, [&](int begin, int end) {
                kernels.q8_0_rows(y, xq, n, w, begin, end);
                finish_outputs(y, n, w.rows, bias, activation, begin, end);
            });
            return;
        }
    }
}

void weight_rows_to_f32(float* out, const WeightMatrix& w, int first, int count) {
    if (count <= 0 || w.cols <= 0) return;
    weight_kernels::active_kernels().widen_rows(out, w, first, count);
}

}  // namespace tinygpt
