#pragma once

namespace tinygpt {

// out[b, t] = token_table[tokens[b, t]] + position_table[t] (position_table may be null: the
// Llama family encodes positions with RoPE instead).
void embedding_forward(float* out, const int* tokens, const float* token_table,
                       const float* position_table, int B, int T, int C);

// d_token_table and d_position_table (if non-null) accumulate the gradient of out.
void embedding_backward(float* d_token_table, float* d_position_table, const float* dout,
                        const int* tokens, int B, int T, int C);

}  // namespace tinygpt
