#include "model/weight_dtype.h"

#include "quant/q8_0.h"
#include "util/error.h"

namespace tinygpt {

const char* dtype_name(WeightDtype dtype) {
    switch (dtype) {
        case WeightDtype::F32:
            return "f32";
        case WeightDtype::BF16:
            return "bf16";
        case WeightDtype::F16:
            return "f16";
        case WeightDtype::Q8_0:
            return "q8_0";
    }
    return "?";
}

WeightDtype parse_weight_dtype(const std::string& name) {
    if (name == "f32" || name == "fp32" || name == "float32") return WeightDtype::F32;
    if (name == "bf16" || name == "bfloat16") return WeightDtype::BF16;
    if (name == "f16" || name == "fp16" || name == "float16") return WeightDtype::F16;
    if (name == "q8_0" || name == "q8") return WeightDtype::Q8_0;
    throw Error("unknown weight dtype '" + name + "' (known: f32, bf16, f16, q8_0)");
}

size_t dtype_row_bytes(WeightDtype dtype, int64_t cols) {
    switch (dtype) {
        case WeightDtype::F32:
            return 4 * static_cast<size_t>(cols);
        case WeightDtype::BF16:
        case WeightDtype::F16:
            return 2 * static_cast<size_t>(cols);
        case WeightDtype::Q8_0:
            if (cols % quant::kQ8_0BlockSize != 0)
                throw Error("a q8_0 row must be a multiple of 32 values long, not " +
                            std::to_string(cols));
            return static_cast<size_t>(cols / quant::kQ8_0BlockSize) * quant::kQ8_0BlockBytes;
    }
    return 0;
}

size_t dtype_tensor_bytes(WeightDtype dtype, const std::vector<int64_t>& shape) {
    if (shape.empty()) return dtype_row_bytes(dtype, 1);
    size_t rows = 1;
    for (size_t i = 0; i + 1 < shape.size(); ++i) rows *= static_cast<size_t>(shape[i]);
    return rows * dtype_row_bytes(dtype, shape.back());
}

WeightDtype stored_tensor_dtype(WeightDtype model_dtype, const TensorId& id,
                                const std::vector<int64_t>& shape) {
    if (model_dtype == WeightDtype::F32 || shape.size() < 2) return WeightDtype::F32;
    switch (id.role) {
        case TensorRole::Router:
        case TensorRole::SharedExpertGate:
        case TensorRole::PositionEmbedding:
            return WeightDtype::F32;
        default:
            break;
    }
    if (model_dtype == WeightDtype::Q8_0 && shape.back() % quant::kQ8_0BlockSize != 0)
        return WeightDtype::F16;
    return model_dtype;
}

}  // namespace tinygpt
