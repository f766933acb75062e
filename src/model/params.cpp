#include "model/params.h"

#include <algorithm>
#include <cmath>

#include "model/bind_tensors.h"
#include "util/error.h"
#include "util/rng.h"

namespace tinygpt {

namespace {

constexpr float kInitStd = 0.02f;
constexpr float kOnes = -1.0f;
constexpr float kZeros = 0.0f;
constexpr size_t kAlignFloats = 16;  // 64 bytes
using R = TensorRole;

}  // namespace

ParameterLayout::ParameterLayout(const ModelConfig& cfg) : ParameterLayout(cfg, ExpertShard{}) {}

ParameterLayout::ParameterLayout(const ModelConfig& cfg, ExpertShard shard)
    : cfg_(cfg), shard_(shard) {
    require(shard.all() || (shard.first >= 0 && shard.count >= 1 &&
                            shard.first + shard.count <= cfg.experts && cfg.is_moe()),
            "expert shard [" + std::to_string(shard.first) + ", +" + std::to_string(shard.count) +
                ") outside the model's " + std::to_string(cfg.experts) + " experts");
    const int64_t V = cfg.vocab, C = cfg.d_model, M = cfg.d_mlp, E = cfg.experts;
    const int64_t X = cfg.expert_width(), S = cfg.shared_ffn;
    const int64_t Q = cfg.q_width(), KV = cfg.kv_width();
    const float residual_std = kInitStd / std::sqrt(2.0f * cfg.layers);
    const auto align = [&] { total_ = (total_ + kAlignFloats - 1) / kAlignFloats * kAlignFloats; };
    const auto global = [&](R role, std::vector<int64_t> shape, float init) {
        add(role, -1, kDenseFfn, std::move(shape), init);
    };
    if (!cfg.is_llama()) {
        // Decayed 2-D tensors; q, k, v back to back: one [3C, C] GEMM operand.
        global(R::TokenEmbedding, {V, C}, kInitStd);
        global(R::PositionEmbedding, {cfg.ctx, C}, kInitStd);
        for (int i = 0; i < cfg.layers; ++i) {
            for (R r : {R::AttnQ, R::AttnK, R::AttnV})
                add(r, i, kDenseFfn, {C, C}, kInitStd, /*aligned=*/r == R::AttnQ);
            add(R::AttnO, i, kDenseFfn, {C, C}, residual_std);
            if (!cfg.is_moe_layer(i)) {
                add(R::FfnIn, i, kDenseFfn, {M, C}, kInitStd);
                add(R::FfnOut, i, kDenseFfn, {C, M}, residual_std);
            } else {
                add(R::Router, i, kDenseFfn, {E, C}, kInitStd);
                for (int e = 0; e < cfg.experts; ++e) {
                    add(R::FfnIn, i, e, {X, C}, kInitStd);
                    add(R::FfnOut, i, e, {C, X}, residual_std);
                }
            }
        }
        align();
        decay_count_ = total_;
        // 1-D tensors: biases and LayerNorm parameters.
        global(R::FinalNorm, {C}, kOnes);
        global(R::FinalNormBias, {C}, kZeros);
        for (int i = 0; i < cfg.layers; ++i) {
            add(R::AttnNorm, i, kDenseFfn, {C}, kOnes);
            add(R::AttnNormBias, i, kDenseFfn, {C}, kZeros);
            for (R r : {R::AttnQBias, R::AttnKBias, R::AttnVBias, R::AttnOBias})
                add(r, i, kDenseFfn, {C}, kZeros,
                    /*aligned=*/r == R::AttnQBias || r == R::AttnOBias);
            add(R::FfnNorm, i, kDenseFfn, {C}, kOnes);
            add(R::FfnNormBias, i, kDenseFfn, {C}, kZeros);
            const int first = cfg.is_moe_layer(i) ? 0 : kDenseFfn;
            const int last = cfg.is_moe_layer(i) ? cfg.experts - 1 : kDenseFfn;
            const int64_t width = cfg.is_moe_layer(i) ? X : M;
            for (int e = first; e <= last; ++e) {
                add(R::FfnInBias, i, e, {width}, kZeros);
                add(R::FfnOutBias, i, e, {C}, kZeros);
            }
        }
        return;
    }
    // gate_proj and up_proj back to back: one [2W, C] GEMM operand.
    auto swiglu = [&](int layer, int expert, int64_t width) {
        add(R::FfnGate, layer, expert, {width, C}, kInitStd);
        add(R::FfnUp, layer, expert, {width, C}, kInitStd, /*aligned=*/false);
        add(R::FfnDown, layer, expert, {C, width}, residual_std);
    };
    global(R::TokenEmbedding, {V, C}, kInitStd);
    for (int i = 0; i < cfg.layers; ++i) {
        add(R::AttnQ, i, kDenseFfn, {Q, C}, kInitStd);
        add(R::AttnK, i, kDenseFfn, {KV, C}, kInitStd, /*aligned=*/false);
        add(R::AttnV, i, kDenseFfn, {KV, C}, kInitStd, /*aligned=*/false);
        add(R::AttnO, i, kDenseFfn, {C, Q}, residual_std);
        if (!cfg.is_moe_layer(i)) {
            swiglu(i, kDenseFfn, M);
        } else {
            add(R::Router, i, kDenseFfn, {E, C}, kInitStd);
            for (int e = 0; e < cfg.experts; ++e) swiglu(i, e, X);
            if (S > 0) {
                swiglu(i, kSharedExpert, S);
                add(R::SharedExpertGate, i, kDenseFfn, {1, C}, kInitStd);
            }
        }
    }
    if (!cfg.tie_embeddings) global(R::OutputHead, {V, C}, kInitStd);
    align();
    decay_count_ = total_;
    global(R::FinalNorm, {C}, kOnes);
    const bool full_qk_norm = cfg.qk_norm == QkNorm::Full;
    const int64_t q_norm = full_qk_norm ? Q : cfg.head_dim();
    const int64_t k_norm = full_qk_norm ? KV : cfg.head_dim();
    for (int i = 0; i < cfg.layers; ++i) {
        add(R::AttnNorm, i, kDenseFfn, {C}, kOnes);
        add(R::FfnNorm, i, kDenseFfn, {C}, kOnes);
        if (cfg.qkv_bias) {
            add(R::AttnQBias, i, kDenseFfn, {Q}, kZeros);
            add(R::AttnKBias, i, kDenseFfn, {KV}, kZeros, /*aligned=*/false);
            add(R::AttnVBias, i, kDenseFfn, {KV}, kZeros, /*aligned=*/false);
        }
        if (cfg.o_bias) add(R::AttnOBias, i, kDenseFfn, {C}, kZeros);
        if (cfg.qk_norm != QkNorm::None) {
            add(R::AttnQNorm, i, kDenseFfn, {q_norm}, kOnes);
            add(R::AttnKNorm, i, kDenseFfn, {k_norm}, kOnes);
        }
    }
}

void ParameterLayout::add(TensorRole role, int layer, int expert, std::vector<int64_t> shape,
                          float init_std, bool aligned) {
    if (expert >= 0 && !shard_.contains(expert)) return;  // another rank's (expert parallelism)
    if (aligned) total_ = (total_ + kAlignFloats - 1) / kAlignFloats * kAlignFloats;
    ParamInfo info;
    info.id = TensorId{role, layer, expert};
    info.name = tinygpt_tensor_name(cfg_.arch, info.id);
    info.numel = 1;
    for (int64_t d : shape) info.numel *= static_cast<size_t>(d);
    info.shape = std::move(shape);
    info.offset = total_;
    info.decay = info.shape.size() >= 2;
    info.init_std = init_std;
    info.joins_previous = !aligned;
    total_ += info.numel;
    count_ += info.numel;
    index_[info.name] = entries_.size();
    id_index_[info.id] = entries_.size();
    entries_.push_back(std::move(info));
}

const ParamInfo& ParameterLayout::at(const std::string& name) const {
    auto it = index_.find(name);
    if (it == index_.end()) throw Error("model has no tensor named '" + name + "'");
    return entries_[it->second];
}

const ParamInfo* ParameterLayout::find(const TensorId& id) const {
    auto it = id_index_.find(id);
    return it == id_index_.end() ? nullptr : &entries_[it->second];
}

const ParamInfo& ParameterLayout::at(const TensorId& id) const {
    if (const ParamInfo* p = find(id)) return *p;
    throw Error("model has no tensor " + describe_tensor(id));
}

std::vector<std::string> ParameterLayout::manifest_order() const {
    std::vector<const ParamInfo*> sorted;
    for (const ParamInfo& p : entries_) sorted.push_back(&p);
    std::sort(sorted.begin(), sorted.end(), [&](const ParamInfo* a, const ParamInfo* b) {
        return canonical_order_key(cfg_.arch, a->id) < canonical_order_key(cfg_.arch, b->id);
    });
    std::vector<std::string> names;
    for (const ParamInfo* p : sorted) names.push_back(p->name);
    return names;
}

ModelTensors<float> bind_tensors(const ParameterLayout& layout, const ModelConfig& cfg,
                                 float* base) {
    return bind_tensors_with<float>(layout, cfg,
                                    [&](size_t i) { return base + layout.entries()[i].offset; });
}
ModelTensors<const float> bind_tensors(const ParameterLayout& layout, const ModelConfig& cfg,
                                       const float* base) {
    return bind_tensors_with<const float>(
        layout, cfg, [&](size_t i) { return base + layout.entries()[i].offset; });
}

void init_parameters(const ParameterLayout& layout, float* params, uint64_t seed) {
    Rng rng(seed);
    if (layout.shard().all()) {
        for (const ParamInfo& p : layout.entries()) init_tensor(p, params + p.offset, rng);
        return;
    }
    // One random stream runs through the full layout's tensors: the draws of the experts this
    // shard does not hold are skipped, so the others get the single-process values.
    const ParameterLayout full(layout.config());
    for (const ParamInfo& p : full.entries()) {
        if (const ParamInfo* held = layout.find(p.id))
            init_tensor(*held, params + held->offset, rng);
        else if (p.init_std > 0)
            rng.discard_normals(p.numel);
    }
}

void init_tensor(const ParamInfo& info, float* dst, Rng& rng) {
    if (info.init_std > 0) {
        for (size_t i = 0; i < info.numel; ++i)
            dst[i] = static_cast<float>(rng.normal() * info.init_std);
    } else {
        const float value = info.init_std < 0 ? 1.0f : 0.0f;
        for (size_t i = 0; i < info.numel; ++i) dst[i] = value;
    }
}

}  // namespace tinygpt
