// The types a model's weights are stored in, on disk and in memory: f32, bf16, f16 and ggml's
// Q8_0 blocks (quant/q8_0.h). Training computes in f32; inference reads every tensor in the type
// it is stored in (model/model_weights.h).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "model/tensor_role.h"

namespace tinygpt {

enum class WeightDtype : uint8_t { F32, BF16, F16, Q8_0 };

const char* dtype_name(WeightDtype dtype);  // "f32", "bf16", "f16", "q8_0"
// "f32" / "bf16" / "f16" / "q8_0" (also "fp32", "fp16", "float32", "bfloat16", "float16",
// "q8"); throws tinygpt::Error naming the known values otherwise (for a --dtype flag).
WeightDtype parse_weight_dtype(const std::string& name);

// Bytes of one row of `cols` values (Q8_0: cols must be a multiple of 32; 34 bytes per block).
size_t dtype_row_bytes(WeightDtype dtype, int64_t cols);
// Bytes of a tensor of this shape (the last dimension is the row).
size_t dtype_tensor_bytes(WeightDtype dtype, const std::vector<int64_t>& shape);

// The type tensor `id` of this shape takes in a model stored as `model_dtype`, as llama.cpp's
// own tools store them: the matrices take model_dtype; vectors (norms, biases), the router, the
// shared expert's gate and the position table stay f32 (small, and read by every token); a Q8_0
// matrix whose rows are not a multiple of 32 long is f16 (as llama-quantize does).
WeightDtype stored_tensor_dtype(WeightDtype model_dtype, const TensorId& id,
                                const std::vector<int64_t>& shape);

}  // namespace tinygpt
