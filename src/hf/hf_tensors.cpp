// The tensors of each HF model type's checkpoint, derived from our tensor roles: one table for
// import and export alike.
#include "hf/hf_model_type.h"

namespace tinygpt::hf {

namespace {

using R = TensorRole;
using T = ModelType;

TensorId id(R role, int layer = -1, int expert = kDenseFfn) {
    return TensorId{role, layer, expert};
}

// Appends the specs of one layer of a Llama-family type.
void llama_layer(std::vector<TensorSpec>& out, T type, const ModelConfig& c, int i,
                 ExpertLayout layout) {
    const int64_t C = c.d_model, Q = c.q_width(), KV = c.kv_width();
    const std::string b = "model.layers." + std::to_string(i) + ".";
    const auto add = [&](std::string name, std::vector<int64_t> shape, TensorId part) {
        out.push_back(TensorSpec{b + std::move(name), std::move(shape), {part}, false});
    };
    add("input_layernorm.weight", {C}, id(R::AttnNorm, i));
    add("self_attn.q_proj.weight", {Q, C}, id(R::AttnQ, i));
    add("self_attn.k_proj.weight", {KV, C}, id(R::AttnK, i));
    add("self_attn.v_proj.weight", {KV, C}, id(R::AttnV, i));
    add("self_attn.o_proj.weight", {C, Q}, id(R::AttnO, i));
    if (c.qkv_bias) {
        add("self_attn.q_proj.bias", {Q}, id(R::AttnQBias, i));
        add("self_attn.k_proj.bias", {KV}, id(R::AttnKBias, i));
        add("self_attn.v_proj.bias", {KV}, id(R::AttnVBias, i));
    }
    if (c.o_bias) add("self_attn.o_proj.bias", {C}, id(R::AttnOBias, i));
    if (c.qk_norm != QkNorm::None) {
        const bool full = c.qk_norm == QkNorm::Full;
        add("self_attn.q_norm.weight", {full ? Q : c.head_dim()}, id(R::AttnQNorm, i));
        add("self_attn.k_norm.weight", {full ? KV : c.head_dim()}, id(R::AttnKNorm, i));
    }
    add("post_attention_layernorm.weight", {C}, id(R::FfnNorm, i));
    const auto swiglu = [&](const std::string& module, int expert, int64_t width, const char* gate,
                            const char* up, const char* down) {
        add(module + gate, {width, C}, id(R::FfnGate, i, expert));
        add(module + up, {width, C}, id(R::FfnUp, i, expert));
        add(module + down, {C, width}, id(R::FfnDown, i, expert));
    };
    if (!c.is_moe_layer(i)) {
        swiglu("mlp.", kDenseFfn, c.d_mlp, "gate_proj.weight", "up_proj.weight",
               "down_proj.weight");
        return;
    }
    const int64_t E = c.experts, X = c.expert_width();
    // Mixtral's hub checkpoints keep the v4 module name and w1 (gate), w3 (up), w2 (down).
    const bool mixtral_hub = type == T::Mixtral && layout == ExpertLayout::PerExpert;
    const std::string moe = mixtral_hub ? "block_sparse_moe." : "mlp.";
    add(moe + "gate.weight", {E, C}, id(R::Router, i));
    if (layout == ExpertLayout::Fused) {
        TensorSpec gate_up{b + moe + "experts.gate_up_proj", {E, 2 * X, C}, {}, false};
        TensorSpec down{b + moe + "experts.down_proj", {E, C, X}, {}, false};
        for (int e = 0; e < c.experts; ++e) {
            gate_up.parts.push_back(id(R::FfnGate, i, e));
            gate_up.parts.push_back(id(R::FfnUp, i, e));
            down.parts.push_back(id(R::FfnDown, i, e));
        }
        out.push_back(std::move(gate_up));
        out.push_back(std::move(down));
    } else {
        for (int e = 0; e < c.experts; ++e) {
            const std::string module = moe + "experts." + std::to_string(e) + ".";
            if (mixtral_hub)
                swiglu(module, e, X, "w1.weight", "w3.weight", "w2.weight");
            else
                swiglu(module, e, X, "gate_proj.weight", "up_proj.weight", "down_proj.weight");
        }
    }
    if (c.shared_ffn > 0) {
        swiglu("mlp.shared_expert.", kSharedExpert, c.shared_ffn, "gate_proj.weight",
               "up_proj.weight", "down_proj.weight");
        add("mlp.shared_expert_gate.weight", {1, C}, id(R::SharedExpertGate, i));
    }
}

// GPT-2 keeps q|k|v as one Conv1D, and every Conv1D weight as [in, out]: the transpose of ours.
std::vector<TensorSpec> gpt2_specs(const ModelConfig& c) {
    const int64_t C = c.d_model, M = c.d_mlp;
    std::vector<TensorSpec> out;
    const auto add = [&](std::string name, std::vector<int64_t> shape, std::vector<TensorId> parts,
                         bool transposed = false) {
        out.push_back(TensorSpec{std::move(name), std::move(shape), std::move(parts), transposed});
    };
    add("transformer.wte.weight", {c.vocab, C}, {id(R::TokenEmbedding)});
    add("transformer.wpe.weight", {c.ctx, C}, {id(R::PositionEmbedding)});
    for (int i = 0; i < c.layers; ++i) {
        const std::string b = "transformer.h." + std::to_string(i) + ".";
        add(b + "ln_1.weight", {C}, {id(R::AttnNorm, i)});
        add(b + "ln_1.bias", {C}, {id(R::AttnNormBias, i)});
        add(b + "attn.c_attn.weight", {C, 3 * C},
            {id(R::AttnQ, i), id(R::AttnK, i), id(R::AttnV, i)}, true);
        add(b + "attn.c_attn.bias", {3 * C},
            {id(R::AttnQBias, i), id(R::AttnKBias, i), id(R::AttnVBias, i)});
        add(b + "attn.c_proj.weight", {C, C}, {id(R::AttnO, i)}, true);
        add(b + "attn.c_proj.bias", {C}, {id(R::AttnOBias, i)});
        add(b + "ln_2.weight", {C}, {id(R::FfnNorm, i)});
        add(b + "ln_2.bias", {C}, {id(R::FfnNormBias, i)});
        add(b + "mlp.c_fc.weight", {C, M}, {id(R::FfnIn, i)}, true);
        add(b + "mlp.c_fc.bias", {M}, {id(R::FfnInBias, i)});
        add(b + "mlp.c_proj.weight", {M, C}, {id(R::FfnOut, i)}, true);
        add(b + "mlp.c_proj.bias", {C}, {id(R::FfnOutBias, i)});
    }
    add("transformer.ln_f.weight", {C}, {id(R::FinalNorm)});
    add("transformer.ln_f.bias", {C}, {id(R::FinalNormBias)});
    return out;
}

bool ends_with(const std::string& s, const std::string& suffix) {
    return s.size() >= suffix.size() &&
           s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

std::vector<TensorSpec> tensor_specs(ModelType type, const ModelConfig& c, ExpertLayout layout) {
    if (type == T::Gpt2) return gpt2_specs(c);
    std::vector<TensorSpec> out;
    out.push_back(TensorSpec{
        "model.embed_tokens.weight", {c.vocab, c.d_model}, {id(R::TokenEmbedding)}, false});
    for (int i = 0; i < c.layers; ++i) llama_layer(out, type, c, i, layout);
    out.push_back(TensorSpec{"model.norm.weight", {c.d_model}, {id(R::FinalNorm)}, false});
    if (!c.tie_embeddings)
        out.push_back(
            TensorSpec{"lm_head.weight", {c.vocab, c.d_model}, {id(R::OutputHead)}, false});
    return out;
}

ModelConfig hf_view(const ModelConfig& cfg, ModelType type) {
    ModelConfig v = cfg;
    if (type == T::Qwen2 || type == T::Qwen2Moe) v.qkv_bias = true;
    const bool attention_bias_type = type == T::Llama || type == T::Mistral || type == T::Qwen3 ||
                                     type == T::Qwen3Moe || type == T::Olmoe;
    if (attention_bias_type && (cfg.qkv_bias || cfg.o_bias)) v.qkv_bias = v.o_bias = true;
    return v;
}

bool is_ignored_tensor(ModelType type, const ModelConfig& cfg, const std::string& name) {
    if (type == T::Gpt2)
        return ends_with(name, ".attn.bias") || ends_with(name, ".attn.masked_bias") ||
               name == "lm_head.weight";
    return cfg.tie_embeddings && name == "lm_head.weight";
}

}  // namespace tinygpt::hf
