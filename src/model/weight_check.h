// Weights that cannot compute anything: NaN or ±inf (a v2 file has no checksums, a v1 file's
// huge values overflow, a diverged run saved its state). Found at load, per tensor, so that a
// command names the tensor instead of printing NaN or 0x00 bytes.
#pragma once
#include <cstddef>
#include <string>
#include <vector>

#include "model/config.h"
#include "model/model_weights.h"

namespace tinygpt {

struct NonFiniteTensor {
    std::string name;  // the tensor's .tinygpt name
    size_t count = 0;  // NaN or ±inf values
    size_t first = 0;  // index of the first one within the tensor
};

// Every tensor of the model that holds a non-finite value, in layout order (empty when the model
// is sound). Reads every weight once (threaded), in its stored type, without converting it:
// bf16/f16 by their exponent bits, Q8_0 by its f16 scales (a block whose scale is NaN or ±inf
// holds 32 non-finite values; its int8 quants are always finite).
std::vector<NonFiniteTensor> find_non_finite(const ModelWeights& weights);
// The same for an f32 buffer in ParameterLayout(cfg) order.
std::vector<NonFiniteTensor> find_non_finite(const ModelConfig& cfg, const float* weights);

// "tensor 'h.0.attn.c_attn.weight' holds 3 NaN/inf values (the first at index 17)", and
// "and N more tensors" when there are several.
std::string describe_non_finite(const std::vector<NonFiniteTensor>& bad);

}  // namespace tinygpt
