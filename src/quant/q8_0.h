// ggml's Q8_0 quantisation: blocks of 32 values, each stored as an f16 scale d followed by 32
// int8 quants q, value = d · q. quantize_q8_0 gives the same bytes as ggml's reference quantiser
// (quantize_row_q8_0_ref, which llama-quantize uses): d = max|x| / 127 in f32, stored rounded to
// f16 (nearest even); q = roundf(x · (1/d)) (half away from zero) with the f32 d; all zero if d = 0.
#pragma once
#include <cstddef>
#include <cstdint>

namespace tinygpt::quant {

inline constexpr int kQ8_0BlockSize = 32;
inline constexpr size_t kQ8_0BlockBytes = 2 + kQ8_0BlockSize;  // f16 scale + 32 int8

// n must be a multiple of 32; dst holds n / 32 · 34 bytes.
void quantize_q8_0(const float* x, int64_t n, uint8_t* dst);
// src holds n / 32 blocks; writes n floats.
void dequantize_q8_0(const uint8_t* src, int64_t n, float* dst);

}  // namespace tinygpt::quant
