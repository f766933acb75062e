#include "infer/inference_tensors.h"

#include "model/bind_tensors.h"
#include "util/error.h"
#include "util/half.h"

namespace tinygpt {

InferenceTensors::InferenceTensors(const ModelWeights& weights) {
    const auto& entries = weights.layout().entries();
    matrices_.resize(entries.size());
    for (size_t i = 0; i < entries.size(); ++i) {
        if (entries[i].joins_previous) continue;
        // The group: this entry and the ones that join it, read as one tensor.
        size_t numel = entries[i].numel;
        int rows = entries[i].shape.size() >= 2 ? static_cast<int>(entries[i].shape[0]) : 1;
        const int cols = static_cast<int>(entries[i].shape.back());
        for (size_t j = i + 1; j < entries.size() && entries[j].joins_previous; ++j) {
            numel += entries[j].numel;
            rows += entries[j].shape.size() >= 2 ? static_cast<int>(entries[j].shape[0]) : 0;
        }
        const TensorView& view = weights.view(i);
        if (entries[i].shape.size() >= 2) {
            matrices_[i] = WeightMatrix{view.data, view.dtype, rows, cols};
            continue;
        }
        // A vector (group): f32 as stored, else widened once.
        if (view.dtype == WeightDtype::F32) {
            matrices_[i] = WeightMatrix{view.data, WeightDtype::F32, 1, static_cast<int>(numel)};
            continue;
        }
        if (view.dtype == WeightDtype::Q8_0)
            throw Error("tensor '" + entries[i].name + "' is a vector stored as q8_0: unsupported");
        std::vector<float>& out = widened_.emplace_back(numel);
        const auto* h = static_cast<const uint16_t*>(view.data);
        for (size_t k = 0; k < numel; ++k)
            out[k] = view.dtype == WeightDtype::BF16 ? bf16_to_float(h[k]) : f16_to_float(h[k]);
        matrices_[i] = WeightMatrix{out.data(), WeightDtype::F32, 1, static_cast<int>(numel)};
    }
    bound_ = bind_tensors_with<const WeightMatrix>(weights.layout(), weights.config(),
                                                   [&](size_t i) { return &matrices_[i]; });
}

}  // namespace tinygpt
