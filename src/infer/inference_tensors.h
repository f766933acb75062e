// A model's tensors as inference reads them, bound by role through the same table as training's
// (model/bind_tensors.h): every matrix a WeightMatrix in its stored type, a fused group (q|k|v,
// gate|up) as one matrix; every vector (norms, biases) f32 (ModelWeights::with_f32_vectors widens
// the few a file stores otherwise). Holds a copy of the weights, which keeps their memory alive.
#pragma once
#include <vector>

#include "kernels/weight_matmul.h"
#include "model/model_weights.h"
#include "model/params.h"

namespace tinygpt {

using InferenceBlock = BlockTensors<const WeightMatrix>;
using InferenceMlp = MlpTensors<const WeightMatrix>;

class InferenceTensors {
  public:
    explicit InferenceTensors(const ModelWeights& stored);
    InferenceTensors(const InferenceTensors&) = delete;
    InferenceTensors& operator=(const InferenceTensors&) = delete;

    const ModelTensors<const WeightMatrix>& operator*() const { return bound_; }
    const ModelTensors<const WeightMatrix>* operator->() const { return &bound_; }

  private:
    ModelWeights weights_;                // vectors in f32
    std::vector<WeightMatrix> matrices_;  // one per layout entry (groups on their first)
    ModelTensors<const WeightMatrix> bound_;
};

// The f32 values of a vector tensor bound above (nullptr when the model has none).
inline const float* f32_values(const WeightMatrix* vector) {
    return vector ? static_cast<const float*>(vector->data) : nullptr;
}

}  // namespace tinygpt
