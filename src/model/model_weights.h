// A model's weights as inference reads them: every tensor of ParameterLayout(cfg) in the type it
// is stored in (f32, bf16, f16 or Q8_0; model/weight_dtype.h), usually a view into a memory-
// mapped file, never upcast as a whole. Training works on one f32 buffer instead (model/model.h);
// to_f32() bridges the two (train --init-from, export to formats that want f32).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "model/config.h"
#include "model/params.h"
#include "model/weight_dtype.h"

namespace tinygpt {

// One tensor in its stored type: rows of shape.back() values, row after row (Q8_0: 34-byte
// blocks of 32 values), starting at `data`.
struct TensorView {
    const void* data = nullptr;
    WeightDtype dtype = WeightDtype::F32;
};

// `n` values of a tensor in any type widened to f32 (bf16/f16 exactly, Q8_0 as ggml dequantises),
// and `n` f32 values stored in `dtype` (halves round to nearest even; Q8_0 as ggml's reference
// quantiser). For Q8_0, n is a multiple of 32.
void tensor_to_f32(const TensorView& v, size_t n, float* out);
void f32_to_tensor(const float* x, size_t n, WeightDtype dtype, void* dst);

// Every tensor group (a tensor and those that join it) starts on this boundary in a buffer of
// typed tensors: ModelWeights::converted, the weights section of a .tinygpt v3 file, GGUF imports.
inline constexpr size_t kTensorAlignBytes = 64;

// The type of each entry of `layout` in a model stored as `dtype` (stored_tensor_dtype), joined
// tensors in the type of the tensor they join.
std::vector<WeightDtype> stored_types(const ParameterLayout& layout, WeightDtype dtype);

// Byte offsets of the entries of `layout` in types `types` packed into one buffer: each group on
// a kTensorAlignBytes boundary, joined tensors right where their predecessor ends. `total_bytes`
// (if not null) gets the end of the last tensor.
std::vector<size_t> pack_tensors(const ParameterLayout& layout,
                                 const std::vector<WeightDtype>& types,
                                 size_t* total_bytes = nullptr);

// True when the tensor keeps f32 whatever the model's type (vectors, the router, the shared
// expert's gate, the position table: stored_tensor_dtype never narrows it).
bool always_f32(const ParamInfo& info);

class ModelWeights {
  public:
    ModelWeights() = default;

    // Views into an f32 buffer laid out by ParameterLayout(cfg): no copy; `base` must outlive
    // the result (and every copy of it), or be kept alive by `owner`.
    static ModelWeights from_f32(const ModelConfig& cfg, const float* base,
                                 std::shared_ptr<const void> owner = nullptr);

    // One view per entry of ParameterLayout(cfg), in entries() order. Entries that join the
    // previous one (ParamInfo::joins_previous: k and v after q, up after gate) must have its
    // type and start right where it ends, so that one product reads them as one matrix (Error
    // otherwise). `owner` keeps the memory of the views alive (may be null).
    ModelWeights(const ModelConfig& cfg, std::vector<TensorView> views,
                 std::shared_ptr<const void> owner);

    // The same model with every tensor in stored_tensor_dtype(dtype, ...), in memory of its own
    // (tensors already in their target type are copied bit for bit; f32 → Q8_0 quantises as
    // ggml's reference quantiser does). Converting to f32 gives an f32_base() model.
    ModelWeights converted(WeightDtype dtype) const;

    // A freshly initialised model (init_parameters' values for `seed`, the same draws in the
    // same order) stored directly in stored_tensor_dtype(dtype, ...), one row of f32 at a time:
    // a model far larger than memory at f32 can be built (benchmarks of big models).
    static ModelWeights random(const ModelConfig& cfg, WeightDtype dtype, uint64_t seed);
    // Bytes the weights of `cfg` take stored as `dtype` (converted(dtype), random(...)).
    static uint64_t stored_bytes_for(const ModelConfig& cfg, WeightDtype dtype);

    // True when every tensor already has the type converted(dtype) would give it (so that
    // converting would copy every bit).
    bool has_stored_types(WeightDtype dtype) const;

    // The same model with the tensors that always_f32() keeps in f32 widened to f32 where they
    // are stored otherwise (files written before per-tensor types stored norms in bf16; a GGUF
    // file may store a norm in f16); every other tensor stays the same view. Inference reads
    // these tensors as f32. Returns a copy of *this when nothing needs widening.
    ModelWeights with_f32_vectors() const;

    // The whole model as one f32 buffer in ParameterLayout order (bf16/f16 widen exactly, Q8_0
    // dequantises as ggml does): for training from it or writing formats that want f32.
    std::vector<float> to_f32() const;

    bool empty() const { return layout_ == nullptr; }
    const ModelConfig& config() const { return cfg_; }
    const ParameterLayout& layout() const { return *layout_; }
    const TensorView& view(size_t entry) const { return views_[entry]; }
    const TensorView& view(const TensorId& id) const;  // Error if the model has no such tensor
    const std::vector<TensorView>& views() const { return views_; }

    // Non-null when every tensor is f32 and the views are one buffer in ParameterLayout order
    // (from_f32, or converted(F32)): what the training-side code (Model) can run directly.
    const float* f32_base() const { return f32_base_; }

    // Keeps the memory of the views alive (null for views of memory owned elsewhere).
    const std::shared_ptr<const void>& owner() const { return owner_; }

    // Bytes of all tensors as stored (padding excluded).
    uint64_t stored_bytes() const;
    // Bytes of weights one decode step reads, on average: every tensor, but one row of the
    // embedding and position tables and, of the routed experts, the K of E each token picks.
    // Bandwidth ÷ this is the decode speed a memory-bound step cannot beat.
    double active_bytes_per_token() const;
    // The types present, the most bytes first: "q8_0+f32", "bf16", "f32".
    std::string type_summary() const;
    // The type of the largest share of the bytes (what a "bf16 model" means).
    WeightDtype main_dtype() const;

  private:
    ModelConfig cfg_;
    std::shared_ptr<const ParameterLayout> layout_;
    std::vector<TensorView> views_;
    std::shared_ptr<const void> owner_;
    const float* f32_base_ = nullptr;
};

}  // namespace tinygpt
