#include "model/params.h"

#include <cmath>

#include "util/error.h"
#include "util/rng.h"

namespace tinygpt {

namespace {

constexpr float kInitStd = 0.02f;
constexpr float kOnes = -1.0f;
constexpr float kZeros = 0.0f;
constexpr size_t kAlignFloats = 16;  // 64 bytes

// The GPT family's names (the original's manifest).
std::string gpt_block(int i) {
    return "blocks." + std::to_string(i) + ".";
}
std::string gpt_expert(int i, int e) {
    return gpt_block(i) + "moe.experts." + std::to_string(e) + ".";
}
// The Llama family's names: HF Qwen2-MoE's (Mixtral's differ only in the MoE module's name).
std::string llama_layer(int i) {
    return "model.layers." + std::to_string(i) + ".";
}
std::string llama_expert(int i, int e) {
    return llama_layer(i) + "mlp.experts." + std::to_string(e) + ".";
}

}  // namespace

ParameterLayout::ParameterLayout(const ModelConfig& cfg) : cfg_(cfg) {
    const int64_t V = cfg.vocab, C = cfg.d_model, M = cfg.d_mlp, E = cfg.experts;
    const int64_t X = cfg.expert_width(), S = cfg.shared_ffn;
    const float residual_std = kInitStd / std::sqrt(2.0f * cfg.layers);
    const auto align = [&] { total_ = (total_ + kAlignFloats - 1) / kAlignFloats * kAlignFloats; };
    if (!cfg.is_llama()) {
        // Decayed 2-D tensors.
        add("token_embedding.weight", {V, C}, kInitStd);
        add("position_embedding.weight", {cfg.ctx, C}, kInitStd);
        for (int i = 0; i < cfg.layers; ++i) {
            const std::string b = gpt_block(i);
            for (const char* p : {"q", "k", "v"})
                add(b + "attn." + p + "_proj.weight", {C, C}, kInitStd, /*aligned=*/*p == 'q');
            add(b + "attn.o_proj.weight", {C, C}, residual_std);
            if (!cfg.is_moe_layer(i)) {
                add(b + "mlp.fc_in.weight", {M, C}, kInitStd);
                add(b + "mlp.fc_out.weight", {C, M}, residual_std);
            } else {
                add(b + "moe.router.weight", {E, C}, kInitStd);
                for (int e = 0; e < cfg.experts; ++e) {
                    add(gpt_expert(i, e) + "fc_in.weight", {X, C}, kInitStd);
                    add(gpt_expert(i, e) + "fc_out.weight", {C, X}, residual_std);
                }
            }
        }
        align();
        decay_count_ = total_;
        // 1-D tensors: biases and LayerNorm parameters.
        add("ln_final.weight", {C}, kOnes);
        add("ln_final.bias", {C}, kZeros);
        for (int i = 0; i < cfg.layers; ++i) {
            const std::string b = gpt_block(i);
            add(b + "ln1.weight", {C}, kOnes);
            add(b + "ln1.bias", {C}, kZeros);
            for (const char* p : {"q", "k", "v", "o"})
                add(b + "attn." + p + "_proj.bias", {C}, kZeros,
                    /*aligned=*/*p == 'q' || *p == 'o');
            add(b + "ln2.weight", {C}, kOnes);
            add(b + "ln2.bias", {C}, kZeros);
            if (!cfg.is_moe_layer(i)) {
                add(b + "mlp.fc_in.bias", {M}, kZeros);
                add(b + "mlp.fc_out.bias", {C}, kZeros);
            } else {
                for (int e = 0; e < cfg.experts; ++e) {
                    add(gpt_expert(i, e) + "fc_in.bias", {X}, kZeros);
                    add(gpt_expert(i, e) + "fc_out.bias", {C}, kZeros);
                }
            }
        }
        return;
    }
    const int64_t hd = cfg.head_dim(), KV = int64_t{cfg.kv_head_count()} * hd;
    // gate_proj and up_proj back to back: one [2W, C] GEMM operand.
    auto swiglu = [&](const std::string& p, int64_t width) {
        add(p + "gate_proj.weight", {width, C}, kInitStd);
        add(p + "up_proj.weight", {width, C}, kInitStd, /*aligned=*/false);
        add(p + "down_proj.weight", {C, width}, residual_std);
    };
    add("model.embed_tokens.weight", {V, C}, kInitStd);
    for (int i = 0; i < cfg.layers; ++i) {
        const std::string b = llama_layer(i) + "self_attn.";
        add(b + "q_proj.weight", {C, C}, kInitStd);
        add(b + "k_proj.weight", {KV, C}, kInitStd, /*aligned=*/false);
        add(b + "v_proj.weight", {KV, C}, kInitStd, /*aligned=*/false);
        add(b + "o_proj.weight", {C, C}, residual_std);
        const std::string m = llama_layer(i) + "mlp.";
        if (!cfg.is_moe_layer(i)) {
            swiglu(m, M);
        } else {
            add(m + "gate.weight", {E, C}, kInitStd);
            for (int e = 0; e < cfg.experts; ++e) swiglu(llama_expert(i, e), X);
            if (S > 0) {
                swiglu(m + "shared_expert.", S);
                add(m + "shared_expert_gate.weight", {1, C}, kInitStd);
            }
        }
    }
    if (!cfg.tie_embeddings) add("lm_head.weight", {V, C}, kInitStd);
    align();
    decay_count_ = total_;
    add("model.norm.weight", {C}, kOnes);
    for (int i = 0; i < cfg.layers; ++i) {
        const std::string b = llama_layer(i);
        add(b + "input_layernorm.weight", {C}, kOnes);
        add(b + "post_attention_layernorm.weight", {C}, kOnes);
        if (cfg.qkv_bias) {
            add(b + "self_attn.q_proj.bias", {C}, kZeros);
            add(b + "self_attn.k_proj.bias", {KV}, kZeros, /*aligned=*/false);
            add(b + "self_attn.v_proj.bias", {KV}, kZeros, /*aligned=*/false);
        }
        if (cfg.qk_norm) {
            add(b + "self_attn.q_norm.weight", {hd}, kOnes);
            add(b + "self_attn.k_norm.weight", {hd}, kOnes);
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
    std::vector<std::string> names;
    // Keeps only the names this layout has (optional tensors of the Llama family).
    auto push = [&](const std::string& n) {
        if (contains(n)) names.push_back(n);
    };
    if (!cfg_.is_llama()) {
        names = {"token_embedding.weight", "position_embedding.weight", "ln_final.weight",
                 "ln_final.bias"};
        for (int i = 0; i < cfg_.layers; ++i) {
            const std::string b = gpt_block(i);
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
            if (!cfg_.is_moe_layer(i)) {
                add_mlp(b + "mlp.");
            } else {
                names.push_back(b + "moe.router.weight");
                for (int e = 0; e < cfg_.experts; ++e) add_mlp(gpt_expert(i, e));
            }
        }
        return names;
    }
    // HF order: embeddings, layers (attention, then the MLP), final norm, head.
    auto swiglu = [&](const std::string& p) {
        for (const char* t : {"gate_proj.weight", "up_proj.weight", "down_proj.weight"})
            push(p + t);
    };
    push("model.embed_tokens.weight");
    for (int i = 0; i < cfg_.layers; ++i) {
        const std::string b = llama_layer(i);
        push(b + "input_layernorm.weight");
        for (const char* p : {"q", "k", "v", "o"}) {
            push(b + "self_attn." + p + "_proj.weight");
            push(b + "self_attn." + p + "_proj.bias");
        }
        push(b + "self_attn.q_norm.weight");
        push(b + "self_attn.k_norm.weight");
        push(b + "post_attention_layernorm.weight");
        if (!cfg_.is_moe_layer(i)) {
            swiglu(b + "mlp.");
        } else {
            push(b + "mlp.gate.weight");
            for (int e = 0; e < cfg_.experts; ++e) swiglu(llama_expert(i, e));
            swiglu(b + "mlp.shared_expert.");
            push(b + "mlp.shared_expert_gate.weight");
        }
    }
    push("model.norm.weight");
    push("lm_head.weight");
    return names;
}

namespace {

template <typename F>
ModelTensors<F> bind_gpt(const ParameterLayout& layout, const ModelConfig& cfg, F* base) {
    auto at = [&](const std::string& name) { return base + layout.at(name).offset; };
    ModelTensors<F> t;
    t.wte = at("token_embedding.weight");
    t.wpe = at("position_embedding.weight");
    t.lnf_w = at("ln_final.weight");
    t.lnf_b = at("ln_final.bias");
    t.head = t.wte;
    auto mlp = [&](const std::string& p) {
        return MlpTensors<F>{at(p + "fc_in.weight"), at(p + "fc_in.bias"), at(p + "fc_out.weight"),
                             at(p + "fc_out.bias")};
    };
    for (int i = 0; i < cfg.layers; ++i) {
        const std::string b = gpt_block(i);
        BlockTensors<F> blk;
        blk.ln1_w = at(b + "ln1.weight");
        blk.ln1_b = at(b + "ln1.bias");
        blk.qkv_w = at(b + "attn.q_proj.weight");  // k and v follow contiguously
        blk.qkv_b = at(b + "attn.q_proj.bias");
        blk.o_w = at(b + "attn.o_proj.weight");
        blk.o_b = at(b + "attn.o_proj.bias");
        blk.ln2_w = at(b + "ln2.weight");
        blk.ln2_b = at(b + "ln2.bias");
        blk.moe = cfg.is_moe_layer(i);
        if (!blk.moe) {
            blk.mlp = mlp(b + "mlp.");
        } else {
            blk.router = at(b + "moe.router.weight");
            for (int e = 0; e < cfg.experts; ++e) blk.experts.push_back(mlp(gpt_expert(i, e)));
        }
        t.blocks.push_back(std::move(blk));
    }
    return t;
}

template <typename F>
ModelTensors<F> bind_llama(const ParameterLayout& layout, const ModelConfig& cfg, F* base) {
    auto at = [&](const std::string& name) { return base + layout.at(name).offset; };
    auto maybe = [&](const std::string& name) -> F* {
        return layout.contains(name) ? base + layout.at(name).offset : nullptr;
    };
    auto swiglu = [&](const std::string& p) {  // up_proj follows gate_proj contiguously
        return MlpTensors<F>{at(p + "gate_proj.weight"), nullptr, at(p + "down_proj.weight"),
                             nullptr};
    };
    ModelTensors<F> t;
    t.wte = at("model.embed_tokens.weight");
    t.lnf_w = at("model.norm.weight");
    t.head = cfg.tie_embeddings ? t.wte : at("lm_head.weight");
    for (int i = 0; i < cfg.layers; ++i) {
        const std::string b = llama_layer(i);
        BlockTensors<F> blk;
        blk.ln1_w = at(b + "input_layernorm.weight");
        blk.qkv_w = at(b + "self_attn.q_proj.weight");  // k and v follow contiguously
        blk.qkv_b = maybe(b + "self_attn.q_proj.bias");
        blk.q_norm = maybe(b + "self_attn.q_norm.weight");
        blk.k_norm = maybe(b + "self_attn.k_norm.weight");
        blk.o_w = at(b + "self_attn.o_proj.weight");
        blk.ln2_w = at(b + "post_attention_layernorm.weight");
        blk.moe = cfg.is_moe_layer(i);
        if (!blk.moe) {
            blk.mlp = swiglu(b + "mlp.");
        } else {
            blk.router = at(b + "mlp.gate.weight");
            for (int e = 0; e < cfg.experts; ++e) blk.experts.push_back(swiglu(llama_expert(i, e)));
            if (cfg.shared_ffn > 0) {
                blk.shared.mlp = swiglu(b + "mlp.shared_expert.");
                blk.shared.gate = at(b + "mlp.shared_expert_gate.weight");
            }
        }
        t.blocks.push_back(std::move(blk));
    }
    return t;
}

template <typename F>
ModelTensors<F> bind_impl(const ParameterLayout& layout, const ModelConfig& cfg, F* base) {
    return cfg.is_llama() ? bind_llama(layout, cfg, base) : bind_gpt(layout, cfg, base);
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
