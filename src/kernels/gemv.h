// Matrix-vector products for one row of activations (a decode step), written for two reasons:
// - the same bits on any thread count. Each output is summed in a fixed order by the same code,
//   whichever thread computes it (outputs are split into fixed chunks), so a decode step's result
//   does not depend on how many threads run it, and the thread count can be chosen by timing
//   (ThreadTuner). OpenBLAS's sgemv does not promise this: its kernels sum the outputs at the
//   edge of a thread's share in another order.
// - threads by work size: a product too small to pay for a fork/join runs on one thread.
#pragma once

namespace tinygpt {

// y[j] = alpha · Σ_i w[j, i] · x[i] + beta · y[j] for j < n; w is [n, k] with row stride ldw.
// (A Linear layer's forward for one row: weight [out, in].) beta = 0 never reads y.
void gemv_rows(float* y, const float* w, int ldw, const float* x, int n, int k, float alpha,
               float beta);

// y[j] = alpha · Σ_i x[i] · w[i, j] + beta · y[j] for j < n; w is [k, n] with row stride ldw.
// (A row vector times a matrix: attention's probabilities times the values.)
void gemv_columns(float* y, const float* x, const float* w, int ldw, int k, int n, float alpha,
                  float beta);

}  // namespace tinygpt
