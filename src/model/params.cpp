#include "model/params.h"

#include <cmath>

#include "util/error.h"
#include "util/rng.h"

namespace tinygpt {

namespace {

std::string block_prefix(int i) {
    return "blocks." + std::to_string(i) + ".";
}
std::string expert_prefix(int i, int e) {
    return block_prefix(i) + "moe.experts." + std::to_string(e) + ".";
}

constexpr float kInitStd = 0.02f;
constexpr float kOnes = -1.0f;
constexpr float kZeros = 0.0f;
constexpr size_t kAlignFloats = 16;  // 64 bytes

}  // namespace

ParameterLayout::ParameterLayout(const ModelConfig& cfg) : cfg_(cfg) {
    const int64_t V = cfg.vocab, C = cfg.d_model, M = cfg.d_mlp, E = cfg.experts;
    const float residual_std = kInitStd / std::sqrt(2.0f * cfg.layers);
    // Decayed 2-D tensors.
    add("token_embedding.weight", {V, C}, kInitStd);
    add("position_embedding.weight", {cfg.ctx, C}, kInitStd);
    for (int i = 0; i < cfg.layers; ++i) {
        const std::string b = block_prefix(i);
        for (const char* p : {"q", "k", "v"})
            add(b + "attn." + p + "_proj.weight", {C, C}, kInitStd, /*aligned=*/*p == 'q');
        add(b + "attn.o_proj.weight", {C, C}, residual_std);
        if (!cfg.is_moe()) {
            add(b + "mlp.fc_in.weight", {M, C}, kInitStd);
            add(b + "mlp.fc_out.weight", {C, M}, residual_std);
        } else {
            add(b + "moe.router.weight", {E, C}, kInitStd);
            for (int e = 0; e < cfg.experts; ++e) {
                add(expert_prefix(i, e) + "fc_in.weight", {M, C}, kInitStd);
                add(expert_prefix(i, e) + "fc_out.weight", {C, M}, residual_std);
            }
        }
    }
    total_ = (total_ + kAlignFloats - 1) / kAlignFloats * kAlignFloats;
    decay_count_ = total_;
    // 1-D tensors: biases and LayerNorm parameters.
    add("ln_final.weight", {C}, kOnes);
    add("ln_final.bias", {C}, kZeros);
    for (int i = 0; i < cfg.layers; ++i) {
        const std::string b = block_prefix(i);
        add(b + "ln1.weight", {C}, kOnes);
        add(b + "ln1.bias", {C}, kZeros);
        for (const char* p : {"q", "k", "v", "o"})
            add(b + "attn." + p + "_proj.bias", {C}, kZeros, /*aligned=*/*p == 'q' || *p == 'o');
        add(b + "ln2.weight", {C}, kOnes);
        add(b + "ln2.bias", {C}, kZeros);
        if (!cfg.is_moe()) {
            add(b + "mlp.fc_in.bias", {M}, kZeros);
            add(b + "mlp.fc_out.bias", {C}, kZeros);
        } else {
            for (int e = 0; e < cfg.experts; ++e) {
                add(expert_prefix(i, e) + "fc_in.bias", {M}, kZeros);
                add(expert_prefix(i, e) + "fc_out.bias", {C}, kZeros);
            }
        }
    }
}

void ParameterLayout::add(const std::string& name, std::vector<int64_t> shape, float init_std,
                          bool aligned) {
    if (aligned) total_ = (total_ + kAlignFloats - 1) / kAlignFloats * kAlignFloats;
    ParamInfo info;
    info.name = name;
    info.numel = 1;
    for (int64_t d : shape) info.numel *= static_cast<size_t>(d);
    info.shape = std::move(shape);
    info.offset = total_;
    info.decay = info.shape.size() >= 2;
    info.init_std = init_std;
    total_ += info.numel;
    count_ += info.numel;
    index_[name] = entries_.size();
    entries_.push_back(std::move(info));
}

const ParamInfo& ParameterLayout::at(const std::string& name) const {
    auto it = index_.find(name);
    if (it == index_.end()) throw Error("model has no tensor named '" + name + "'");
    return entries_[it->second];
}

std::vector<std::string> ParameterLayout::manifest_order() const {
    std::vector<std::string> names = {"token_embedding.weight", "position_embedding.weight",
                                      "ln_final.weight", "ln_final.bias"};
    for (int i = 0; i < cfg_.layers; ++i) {
        const std::string b = block_prefix(i);
        for (const char* t : {"ln1.weight", "ln1.bias"}) names.push_back(b + t);
        for (const char* p : {"q", "k", "v", "o"}) {
            names.push_back(b + "attn." + p + "_proj.weight");
            names.push_back(b + "attn." + p + "_proj.bias");
        }
        for (const char* t : {"ln2.weight", "ln2.bias"}) names.push_back(b + t);
        auto add_mlp = [&](const std::string& p) {
            for (const char* t : {"fc_in.weight", "fc_in.bias", "fc_out.weight", "fc_out.bias"})
                names.push_back(p + t);
        };
        if (!cfg_.is_moe()) {
            add_mlp(b + "mlp.");
        } else {
            names.push_back(b + "moe.router.weight");
            for (int e = 0; e < cfg_.experts; ++e) add_mlp(expert_prefix(i, e));
        }
    }
    return names;
}

namespace {

template <typename F>
ModelTensors<F> bind_impl(const ParameterLayout& layout, const ModelConfig& cfg, F* base) {
    auto at = [&](const std::string& name) { return base + layout.at(name).offset; };
    ModelTensors<F> t;
    t.wte = at("token_embedding.weight");
    t.wpe = at("position_embedding.weight");
    t.lnf_w = at("ln_final.weight");
    t.lnf_b = at("ln_final.bias");
    auto mlp = [&](const std::string& p) {
        return MlpTensors<F>{at(p + "fc_in.weight"), at(p + "fc_in.bias"), at(p + "fc_out.weight"),
                             at(p + "fc_out.bias")};
    };
    for (int i = 0; i < cfg.layers; ++i) {
        const std::string b = block_prefix(i);
        BlockTensors<F> blk;
        blk.ln1_w = at(b + "ln1.weight");
        blk.ln1_b = at(b + "ln1.bias");
        blk.qkv_w = at(b + "attn.q_proj.weight");  // k and v follow contiguously
        blk.qkv_b = at(b + "attn.q_proj.bias");
        blk.o_w = at(b + "attn.o_proj.weight");
        blk.o_b = at(b + "attn.o_proj.bias");
        blk.ln2_w = at(b + "ln2.weight");
        blk.ln2_b = at(b + "ln2.bias");
        if (!cfg.is_moe()) {
            blk.mlp = mlp(b + "mlp.");
        } else {
            blk.router = at(b + "moe.router.weight");
            for (int e = 0; e < cfg.experts; ++e) blk.experts.push_back(mlp(expert_prefix(i, e)));
        }
        t.blocks.push_back(std::move(blk));
    }
    return t;
}

}  // namespace

ModelTensors<float> bind_tensors(const ParameterLayout& layout, const ModelConfig& cfg,
                                 float* base) {
    return bind_impl(layout, cfg, base);
}
ModelTensors<const float> bind_tensors(const ParameterLayout& layout, const ModelConfig& cfg,
                                       const float* base) {
    return bind_impl(layout, cfg, base);
}

void init_parameters(const ParameterLayout& layout, float* params, uint64_t seed) {
    Rng rng(seed);
    for (const ParamInfo& p : layout.entries()) {
        float* dst = params + p.offset;
        if (p.init_std > 0) {
            for (size_t i = 0; i < p.numel; ++i)
                dst[i] = static_cast<float>(rng.normal() * p.init_std);
        } else {
            const float value = p.init_std < 0 ? 1.0f : 0.0f;
            for (size_t i = 0; i < p.numel; ++i) dst[i] = value;
        }
    }
}

}  // namespace tinygpt
