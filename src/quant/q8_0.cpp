// ggml's Q8_0 quantisation (src/quant/q8_0.h), written to give the bytes of ggml's
// quantize_row_q8_0_ref: the scale is computed and applied in f32 and only stored as f16.
// Non-finite input is the caller's to refuse (the GGUF writer does); ggml's conversion of such
// quants is undefined behaviour, here they become 0 (the scale is then inf or NaN).
#include "quant/q8_0.h"

#include <cmath>
#include <cstring>

#include "util/half.h"

namespace tinygpt::quant {

void quantize_q8_0(const float* x, int64_t n, uint8_t* dst) {
    const int64_t blocks = n / kQ8_0BlockSize;
    for (int64_t b = 0; b < blocks; ++b) {
        const float* xb = x + b * kQ8_0BlockSize;
        uint8_t* out = dst + b * static_cast<int64_t>(kQ8_0BlockBytes);
        float amax = 0.0f;
        for (int j = 0; j < kQ8_0BlockSize; ++j) {
            const float a = std::fabs(xb[j]);
            amax = amax > a ? amax : a;  // ggml's MAX, NaN handling included
        }
        const float d = amax / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        const uint16_t dh = float_to_f16(d);
        std::memcpy(out, &dh, 2);
        for (int j = 0; j < kQ8_0BlockSize; ++j) {
            const float q = std::round(xb[j] * id);  // half away from zero, like roundf
            const int8_t qi = q >= -128.0f && q <= 127.0f ? static_cast<int8_t>(q) : int8_t{0};
            out[2 + j] = static_cast<uint8_t>(qi);
        }
    }
}

void dequantize_q8_0(const uint8_t* src, int64_t n, float* dst) {
    const int64_t blocks = n / kQ8_0BlockSize;
    for (int64_t b = 0; b < blocks; ++b) {
        const uint8_t* in = src + b * static_cast<int64_t>(kQ8_0BlockBytes);
        uint16_t dh;
        std::memcpy(&dh, in, 2);
        const float d = f16_to_float(dh);
        for (int j = 0; j < kQ8_0BlockSize; ++j)
            dst[b * kQ8_0BlockSize + j] = static_cast<float>(static_cast<int8_t>(in[2 + j])) * d;
    }
}

}  // namespace tinygpt::quant
