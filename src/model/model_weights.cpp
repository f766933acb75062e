#include "model/model_weights.h"

#include <algorithm>
#include <cstring>
#include <map>

#include "quant/q8_0.h"
#include "util/arena.h"
#include "util/error.h"
#include "util/half.h"
#include "util/rng.h"

namespace tinygpt {

namespace {

size_t round_up(size_t n, size_t a) {
    return (n + a - 1) / a * a;
}

size_t rows_of(const ParamInfo& info) {
    return info.shape.empty() ? 1 : info.numel / static_cast<size_t>(info.shape.back());
}
int64_t cols_of(const ParamInfo& info) {
    return info.shape.empty() ? 1 : info.shape.back();
}

}  // namespace

void tensor_to_f32(const TensorView& v, size_t n, float* out) {
    switch (v.dtype) {
        case WeightDtype::F32:
            std::memcpy(out, v.data, n * sizeof(float));
            return;
        case WeightDtype::BF16: {
            const auto* h = static_cast<const uint16_t*>(v.data);
            for (size_t i = 0; i < n; ++i) out[i] = bf16_to_float(h[i]);
            return;
        }
        case WeightDtype::F16: {
            const auto* h = static_cast<const uint16_t*>(v.data);
            for (size_t i = 0; i < n; ++i) out[i] = f16_to_float(h[i]);
            return;
        }
        case WeightDtype::Q8_0:
            quant::dequantize_q8_0(static_cast<const uint8_t*>(v.data), static_cast<int64_t>(n),
                                   out);
            return;
    }
}

void f32_to_tensor(const float* x, size_t n, WeightDtype dtype, void* dst) {
    switch (dtype) {
        case WeightDtype::F32:
            std::memcpy(dst, x, n * sizeof(float));
            return;
        case WeightDtype::BF16: {
            auto* h = static_cast<uint16_t*>(dst);
            for (size_t i = 0; i < n; ++i) h[i] = float_to_bf16(x[i]);
            return;
        }
        case WeightDtype::F16: {
            auto* h = static_cast<uint16_t*>(dst);
            for (size_t i = 0; i < n; ++i) h[i] = float_to_f16(x[i]);
            return;
        }
        case WeightDtype::Q8_0:
            quant::quantize_q8_0(x, static_cast<int64_t>(n), static_cast<uint8_t*>(dst));
            return;
    }
}

std::vector<WeightDtype> stored_types(const ParameterLayout& layout, WeightDtype dtype) {
    const auto& entries = layout.entries();
    std::vector<WeightDtype> types(entries.size());
    for (size_t i = 0; i < entries.size(); ++i)
        types[i] = entries[i].joins_previous
                       ? types[i - 1]
                       : stored_tensor_dtype(dtype, entries[i].id, entries[i].shape);
    return types;
}

std::vector<size_t> pack_tensors(const ParameterLayout& layout,
                                 const std::vector<WeightDtype>& types, size_t* total_bytes) {
    const auto& entries = layout.entries();
    std::vector<size_t> offsets(entries.size());
    size_t total = 0;
    for (size_t i = 0; i < entries.size(); ++i) {
        if (!entries[i].joins_previous) total = round_up(total, kTensorAlignBytes);
        offsets[i] = total;
        total += dtype_tensor_bytes(types[i], entries[i].shape);
    }
    if (total_bytes) *total_bytes = total;
    return offsets;
}

bool always_f32(const ParamInfo& info) {
    // bf16 is narrower than f32 for every tensor the policy narrows at all.
    return stored_tensor_dtype(WeightDtype::BF16, info.id, info.shape) == WeightDtype::F32;
}

ModelWeights ModelWeights::from_f32(const ModelConfig& cfg, const float* base,
                                    std::shared_ptr<const void> owner) {
    ModelWeights w;
    w.owner_ = std::move(owner);
    w.cfg_ = cfg;
    w.layout_ = std::make_shared<const ParameterLayout>(cfg);
    w.views_.reserve(w.layout_->entries().size());
    for (const ParamInfo& info : w.layout_->entries())
        w.views_.push_back(TensorView{base + info.offset, WeightDtype::F32});
    w.f32_base_ = base;
    return w;
}

ModelWeights::ModelWeights(const ModelConfig& cfg, std::vector<TensorView> views,
                           std::shared_ptr<const void> owner)
    : cfg_(cfg),
      layout_(std::make_shared<const ParameterLayout>(cfg)),
      views_(std::move(views)),
      owner_(std::move(owner)) {
    const auto& entries = layout_->entries();
    if (views_.size() != entries.size())
        throw Error("model weights: " + std::to_string(views_.size()) +
                    " tensors given, the model has " + std::to_string(entries.size()));
    for (size_t i = 0; i < entries.size(); ++i) {
        const ParamInfo& info = entries[i];
        if (views_[i].data == nullptr)
            throw Error("model weights: tensor '" + info.name + "' is missing");
        // Validates the row length for Q8_0 (Error otherwise).
        (void)dtype_tensor_bytes(views_[i].dtype, info.shape);
        if (!info.joins_previous) continue;
        const ParamInfo& prev = entries[i - 1];
        const TensorView& pv = views_[i - 1];
        const auto* want =
            static_cast<const uint8_t*>(pv.data) + dtype_tensor_bytes(pv.dtype, prev.shape);
        if (views_[i].dtype != pv.dtype || views_[i].data != want)
            throw Error("model weights: tensor '" + info.name + "' must follow '" + prev.name +
                        "' in memory, in the same type");
    }
    // All f32 and where ParameterLayout puts them (an f32 GGUF import packs them so): the
    // training-side code can run them too, as from_f32's.
    if (entries.empty()) return;
    const auto* base = static_cast<const float*>(views_[0].data) - entries[0].offset;
    for (size_t i = 0; i < entries.size(); ++i)
        if (views_[i].dtype != WeightDtype::F32 || views_[i].data != base + entries[i].offset)
            return;
    f32_base_ = base;
}

const TensorView& ModelWeights::view(const TensorId& id) const {
    const ParamInfo* info = layout_->find(id);
    if (!info) throw Error("model has no tensor " + describe_tensor(id));
    return views_[static_cast<size_t>(info - layout_->entries().data())];
}

uint64_t ModelWeights::stored_bytes_for(const ModelConfig& cfg, WeightDtype dtype) {
    const ParameterLayout layout(cfg);
    if (dtype == WeightDtype::F32) return sizeof(float) * layout.total();
    size_t total = 0;
    pack_tensors(layout, stored_types(layout, dtype), &total);
    return total;
}

ModelWeights ModelWeights::random(const ModelConfig& cfg, WeightDtype dtype, uint64_t seed) {
    cfg.validate();
    const ParameterLayout layout(cfg);
    if (dtype == WeightDtype::F32) {  // one f32 buffer in layout order, as training has it
        auto buffer = std::make_shared<std::vector<float>>(layout.total(), 0.0f);
        init_parameters(layout, buffer->data(), seed);
        ModelWeights w = from_f32(cfg, buffer->data());
        w.owner_ = buffer;
        return w;
    }
    const std::vector<WeightDtype> types = stored_types(layout, dtype);
    size_t total = 0;
    const std::vector<size_t> offsets = pack_tensors(layout, types, &total);
    auto buffer = std::make_shared<AlignedBuffer>(aligned_alloc_bytes(std::max<size_t>(total, 1)));
    auto* base = reinterpret_cast<uint8_t*>(buffer->get());
    const auto& entries = layout.entries();
    std::vector<TensorView> views(entries.size());
    std::vector<float> row;
    Rng rng(seed);
    for (size_t i = 0; i < entries.size(); ++i) {
        const ParamInfo& p = entries[i];
        const size_t rows = rows_of(p), cols = static_cast<size_t>(cols_of(p));
        const size_t row_bytes = dtype_row_bytes(types[i], cols_of(p));
        views[i] = TensorView{base + offsets[i], types[i]};
        row.resize(cols);
        for (size_t r = 0; r < rows; ++r) {
            for (float& x : row)
                x = p.init_std > 0 ? static_cast<float>(rng.normal() * p.init_std)
                                   : (p.init_std < 0 ? 1.0f : 0.0f);
            f32_to_tensor(row.data(), cols, types[i], base + offsets[i] + r * row_bytes);
        }
    }
    return ModelWeights(cfg, std::move(views), std::move(buffer));
}

ModelWeights ModelWeights::converted(WeightDtype dtype) const {
    const auto& entries = layout_->entries();
    if (dtype == WeightDtype::F32) {
        auto buffer = std::make_shared<std::vector<float>>(to_f32());
        ModelWeights w = from_f32(cfg_, buffer->data());
        w.owner_ = buffer;
        return w;
    }
    // Byte offsets: every group on a cache line, joined tensors right after their predecessor.
    const std::vector<WeightDtype> types = stored_types(*layout_, dtype);
    size_t total = 0;
    const std::vector<size_t> offsets = pack_tensors(*layout_, types, &total);
    auto buffer = std::make_shared<AlignedBuffer>(aligned_alloc_bytes(std::max<size_t>(total, 1)));
    auto* base = reinterpret_cast<uint8_t*>(buffer->get());
    std::vector<TensorView> views(entries.size());
    std::vector<float> row;
    for (size_t i = 0; i < entries.size(); ++i) {
        const ParamInfo& info = entries[i];
        void* dst = base + offsets[i];
        views[i] = TensorView{dst, types[i]};
        if (views_[i].dtype == types[i]) {  // already in its type: the same bits
            std::memcpy(dst, views_[i].data, dtype_tensor_bytes(types[i], info.shape));
            continue;
        }
        // Row by row, so the scratch stays one row long.
        const size_t rows = rows_of(info), cols = static_cast<size_t>(cols_of(info));
        const size_t src_row = dtype_row_bytes(views_[i].dtype, cols_of(info));
        const size_t dst_row = dtype_row_bytes(types[i], cols_of(info));
        row.resize(cols);
        for (size_t r = 0; r < rows; ++r) {
            tensor_to_f32(TensorView{static_cast<const uint8_t*>(views_[i].data) + r * src_row,
                                     views_[i].dtype},
                          cols, row.data());
            f32_to_tensor(row.data(), cols, types[i], static_cast<uint8_t*>(dst) + r * dst_row);
        }
    }
    return ModelWeights(cfg_, std::move(views), std::move(buffer));
}

bool ModelWeights::has_stored_types(WeightDtype dtype) const {
    const std::vector<WeightDtype> types = stored_types(*layout_, dtype);
    for (size_t i = 0; i < views_.size(); ++i)
        if (views_[i].dtype != types[i]) return false;
    return true;
}

ModelWeights ModelWeights::with_f32_vectors() const {
    const auto& entries = layout_->entries();
    // A group is widened as a whole when any of its tensors needs it (joined tensors share one
    // type): in practice q/k/v biases, all three or none.
    std::vector<char> widen(entries.size(), 0);
    bool any = false;
    for (size_t i = entries.size(); i-- > 0;) {
        widen[i] = views_[i].dtype != WeightDtype::F32 && always_f32(entries[i]);
        if (i + 1 < entries.size() && entries[i + 1].joins_previous && widen[i + 1]) widen[i] = 1;
        any |= widen[i] != 0;
    }
    if (!any) return *this;
    for (size_t i = 1; i < entries.size(); ++i)
        if (entries[i].joins_previous && widen[i - 1]) widen[i] = 1;
    std::vector<size_t> offsets(entries.size(), 0);
    size_t total = 0;
    for (size_t i = 0; i < entries.size(); ++i) {
        if (!widen[i]) continue;
        if (!entries[i].joins_previous) total = round_up(total, kTensorAlignBytes);
        offsets[i] = total;
        total += entries[i].numel * sizeof(float);
    }
    struct Owner {
        std::shared_ptr<const void> previous;
        AlignedBuffer widened;
    };
    auto owner = std::make_shared<Owner>(Owner{owner_, aligned_alloc_bytes(total)});
    auto* base = reinterpret_cast<uint8_t*>(owner->widened.get());
    std::vector<TensorView> views = views_;
    for (size_t i = 0; i < entries.size(); ++i) {
        if (!widen[i]) continue;
        auto* dst = reinterpret_cast<float*>(base + offsets[i]);
        tensor_to_f32(views_[i], entries[i].numel, dst);
        views[i] = TensorView{dst, WeightDtype::F32};
    }
    return ModelWeights(cfg_, std::move(views), std::move(owner));
}

std::vector<float> ModelWeights::to_f32() const {
    std::vector<float> out(layout_->total(), 0.0f);
    const auto& entries = layout_->entries();
    for (size_t i = 0; i < entries.size(); ++i)
        tensor_to_f32(views_[i], entries[i].numel, out.data() + entries[i].offset);
    return out;
}

uint64_t ModelWeights::stored_bytes() const {
    uint64_t bytes = 0;
    const auto& entries = layout_->entries();
    for (size_t i = 0; i < entries.size(); ++i)
        bytes += dtype_tensor_bytes(views_[i].dtype, entries[i].shape);
    return bytes;
}

double ModelWeights::active_bytes_per_token() const {
    double bytes = 0;
    const auto& entries = layout_->entries();
    for (size_t i = 0; i < entries.size(); ++i) {
        const ParamInfo& p = entries[i];
        const double all = static_cast<double>(dtype_tensor_bytes(views_[i].dtype, p.shape));
        if (p.id.role == TensorRole::TokenEmbedding || p.id.role == TensorRole::PositionEmbedding) {
            bytes += static_cast<double>(dtype_row_bytes(views_[i].dtype, cols_of(p)));
            // A tied head reads the whole table once more.
            if (p.id.role == TensorRole::TokenEmbedding && cfg_.tied_head()) bytes += all;
        } else if (p.id.is_routed_expert()) {
            bytes += all * cfg_.topk / cfg_.experts;
        } else {
            bytes += all;
        }
    }
    return bytes;
}

namespace {

std::vector<std::pair<uint64_t, WeightDtype>> bytes_by_type(const ParameterLayout& layout,
                                                            const std::vector<TensorView>& views) {
    std::map<WeightDtype, uint64_t> bytes;
    for (size_t i = 0; i < views.size(); ++i)
        bytes[views[i].dtype] += dtype_tensor_bytes(views[i].dtype, layout.entries()[i].shape);
    std::vector<std::pair<uint64_t, WeightDtype>> sorted;
    for (const auto& [dtype, n] : bytes) sorted.emplace_back(n, dtype);
    std::sort(sorted.begin(), sorted.end(),
              [](const auto& a, const auto& b) { return a.first > b.first; });
    return sorted;
}

}  // namespace

std::string ModelWeights::type_summary() const {
    std::string s;
    for (const auto& [n, dtype] : bytes_by_type(*layout_, views_)) {
        if (!s.empty()) s += "+";
        s += dtype_name(dtype);
    }
    return s;
}

WeightDtype ModelWeights::main_dtype() const {
    const auto sorted = bytes_by_type(*layout_, views_);
    return sorted.empty() ? WeightDtype::F32 : sorted.front().second;
}

}  // namespace tinygpt
