#include "infer/inference_tensors.h"

#include "model/bind_tensors.h"
#include "util/error.h"

namespace tinygpt {

InferenceTensors::InferenceTensors(const ModelWeights& stored)
    : weights_(stored.with_f32_vectors()) {
    const ModelWeights& weights = weights_;
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
        // A vector (group): f32 after with_f32_vectors.
        if (view.dtype != WeightDtype::F32)
            throw Error("tensor '" + entries[i].name + "' is a vector stored as " +
                        dtype_name(view.dtype) + ": inference reads vectors as f32");
        matrices_[i] = WeightMatrix{view.data, WeightDtype::F32, 1, static_cast<int>(numel)};
    }
    bound_ = bind_tensors_with<const WeightMatrix>(weights.layout(), weights.config(),
                                                   [&](size_t i) { return &matrices_[i]; });
}

}  // namespace tinygpt
