#pragma once
#include <cstddef>

namespace tinygpt {

// Exact GELU, 0.5·z·(1 + erf(z/√2)) (not the tanh approximation), as in the original.
void gelu_forward(float* out, const float* in, size_t n);
// d_in = d_out · GELU'(in). d_in may alias d_out.
void gelu_backward(float* d_in, const float* in, const float* d_out, size_t n);

}  // namespace tinygpt
