// The llama.cpp architectures tinygpt writes and reads: which one computes our model's function,
// their hyper-parameter keys, and their tensor table derived from our tensor roles.
#include "gguf/gguf_arch.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "kernels/layernorm.h"
#include "util/error.h"

namespace tinygpt::gguf {

namespace {

using R = TensorRole;
using A = GgufArch;

struct ArchName {
    A arch;
    const char* name;
};
constexpr ArchName kArchNames[] = {
    {A::Gpt2, "gpt2"},         {A::Llama, "llama"},       {A::Qwen2, "qwen2"}, {A::Qwen3, "qwen3"},
    {A::Qwen2Moe, "qwen2moe"}, {A::Qwen3Moe, "qwen3moe"}, {A::Olmoe, "olmoe"},
};

TensorId id(R role, int layer = -1, int expert = kDenseFfn) {
    return TensorId{role, layer, expert};
}

bool is_moe_arch(A arch) {
    return arch == A::Qwen2Moe || arch == A::Qwen3Moe || arch == A::Olmoe ||
           arch == A::Llama;  // llama: MoE when expert_count > 0
}

// The architectures whose attention projections are [C, C]: q width must be d_model.
bool square_attention(A arch) {
    return arch == A::Qwen2Moe || arch == A::Olmoe;
}

[[noreturn]] void refuse(const std::string& why) {
    throw Error("cannot export to GGUF: " + why);
}

// The MoE architecture for a Llama-family model whose MoE blocks route as `cfg` says.
A moe_arch_for(const ModelConfig& cfg) {
    const bool renorm = cfg.renormalize_topk();
    const std::string routing =
        "top-" + std::to_string(cfg.topk) + (renorm ? " with" : " without") + " renormalised gates";
    if (cfg.shared_ffn > 0) {
        if (cfg.qk_norm != QkNorm::None)
            refuse(
                "a shared expert with q/k norms exists in no llama.cpp architecture "
                "(qwen2moe has the shared expert, no q/k norm); train without --qk-norm");
        if (renorm)
            refuse("a shared expert with " + routing +
                   ": llama.cpp's qwen2moe (the architecture with a shared expert) never "
                   "renormalises; train with --moe-norm-topk off");
        return A::Qwen2Moe;
    }
    if (cfg.qk_norm == QkNorm::Full) {
        if (renorm)
            refuse("q/k norms over the whole projection (OLMoE) with " + routing +
                   ": llama.cpp's olmoe never renormalises; train with --moe-norm-topk off");
        return A::Olmoe;
    }
    if (cfg.qk_norm == QkNorm::PerHead) {
        if (!renorm)
            refuse("per-head q/k norms (Qwen3-MoE) with " + routing +
                   ": llama.cpp's qwen3moe always renormalises; train with --moe-norm-topk on");
        return A::Qwen3Moe;
    }
    if (!renorm)
        refuse(routing +
               " (the default for top-1): llama.cpp's llama (Mixtral) always renormalises, and "
               "its non-renormalising MoE architectures need a shared expert (qwen2moe) or "
               "q/k norms over the whole projection (olmoe); train with --moe-norm-topk on, "
               "--moe-shared-ffn N or --qk-norm full");
    return A::Llama;
}

}  // namespace

bool renormalises_gates(GgufArch arch) {
    return arch == A::Llama || arch == A::Qwen3Moe;
}

const char* gguf_arch_name(GgufArch arch) {
    for (const ArchName& a : kArchNames)
        if (a.arch == arch) return a.name;
    return "?";
}

GgufArch parse_gguf_arch(const std::string& name) {
    for (const ArchName& a : kArchNames)
        if (name == a.name) return a.arch;
    std::string known;
    for (const ArchName& a : kArchNames) known += std::string(known.empty() ? "" : ", ") + a.name;
    throw Error("general.architecture '" + name + "' is not one tinygpt runs (known: " + known +
                ")");
}

ExportPlan plan_export(const ModelConfig& cfg) {
    ExportPlan plan;
    plan.file_config = cfg;
    plan.emulated_dense.assign(static_cast<size_t>(cfg.layers), 0);
    if (!cfg.is_llama()) {
        if (cfg.is_moe())
            refuse(
                "a GPT-family model with MoE blocks (LayerNorm + GELU experts) exists in no "
                "llama.cpp architecture; train with --arch llama for an exportable MoE, or "
                "export it with --to hf");
        plan.arch = A::Gpt2;
        return plan;
    }
    A arch;
    if (!cfg.is_moe()) {
        // Dense: llama, qwen3 (per-head q/k norm), or OLMoE's full q/k norm as one expert.
        arch = cfg.qk_norm == QkNorm::None      ? A::Llama
               : cfg.qk_norm == QkNorm::PerHead ? A::Qwen3
                                                : A::Olmoe;
        if (arch == A::Olmoe) {
            // Two copies, both always chosen with gates ½ (E = 1 is no MoE in our description).
            plan.file_config.experts = 2;
            plan.file_config.topk = 2;
            plan.file_config.moe_ffn = cfg.d_mlp;
            plan.file_config.norm_topk = NormTopk::Off;
            plan.file_config.moe_layers.clear();
            plan.emulated_dense.assign(static_cast<size_t>(cfg.layers), 1);
        }
    } else {
        arch = moe_arch_for(cfg);
        if (!cfg.all_layers_moe()) {
            ModelConfig& f = plan.file_config;
            f.moe_layers.clear();
            f.moe_ffn = std::max(cfg.expert_width(), cfg.d_mlp);
            for (int i = 0; i < cfg.layers; ++i) plan.emulated_dense[i] = !cfg.is_moe_layer(i);
        }
    }
    if (cfg.o_bias && arch != A::Llama)
        refuse(std::string("an o_proj bias: llama.cpp's ") + gguf_arch_name(arch) +
               " (the architecture for this model's q/k norms or shared expert) has none");
    if (square_attention(arch) && cfg.q_width() != cfg.d_model)
        refuse(std::string("llama.cpp's ") + gguf_arch_name(arch) +
               " needs heads × head_dim = d_model (here " + std::to_string(cfg.heads) + " × " +
               std::to_string(cfg.head_dim()) + " ≠ " + std::to_string(cfg.d_model) +
               "); train without --head-dim");
    if (arch == A::Olmoe || arch == A::Qwen2Moe) {
        // Both require `output`: a tied head is written as a copy of the embedding.
        plan.untied_head_copy = cfg.tie_embeddings;
        plan.file_config.tie_embeddings = false;
    }
    plan.arch = arch;
    return plan;
}

std::vector<GgufTensorSpec> gguf_tensor_specs(GgufArch arch, const ModelConfig& c) {
    const int64_t C = c.d_model, V = c.vocab, Q = c.q_width(), KV = c.kv_width();
    std::vector<GgufTensorSpec> out;
    const auto add = [&out](std::string name, std::vector<int64_t> ne, std::vector<TensorId> parts,
                            int permute_heads = 0) {
        out.push_back(
            GgufTensorSpec{std::move(name), std::move(ne), std::move(parts), permute_heads});
    };
    add("token_embd.weight", {C, V}, {id(R::TokenEmbedding)});
    if (arch == A::Gpt2) {
        const int64_t M = c.d_mlp;
        add("position_embd.weight", {C, c.ctx}, {id(R::PositionEmbedding)});
        for (int i = 0; i < c.layers; ++i) {
            const std::string b = "blk." + std::to_string(i) + ".";
            add(b + "attn_norm.weight", {C}, {id(R::AttnNorm, i)});
            add(b + "attn_norm.bias", {C}, {id(R::AttnNormBias, i)});
            add(b + "attn_qkv.weight", {C, 3 * C},
                {id(R::AttnQ, i), id(R::AttnK, i), id(R::AttnV, i)});
            add(b + "attn_qkv.bias", {3 * C},
                {id(R::AttnQBias, i), id(R::AttnKBias, i), id(R::AttnVBias, i)});
            add(b + "attn_output.weight", {C, C}, {id(R::AttnO, i)});
            add(b + "attn_output.bias", {C}, {id(R::AttnOBias, i)});
            add(b + "ffn_norm.weight", {C}, {id(R::FfnNorm, i)});
            add(b + "ffn_norm.bias", {C}, {id(R::FfnNormBias, i)});
            add(b + "ffn_up.weight", {C, M}, {id(R::FfnIn, i)});
            add(b + "ffn_up.bias", {M}, {id(R::FfnInBias, i)});
            add(b + "ffn_down.weight", {M, C}, {id(R::FfnOut, i)});
            add(b + "ffn_down.bias", {C}, {id(R::FfnOutBias, i)});
        }
        add("output_norm.weight", {C}, {id(R::FinalNorm)});
        add("output_norm.bias", {C}, {id(R::FinalNormBias)});
        return out;
    }
    // llama.cpp's llama uses adjacent-pair RoPE: q and k rows are permuted within each head.
    const int q_heads = arch == A::Llama ? c.heads : 0;
    const int k_heads = arch == A::Llama ? c.kv_head_count() : 0;
    for (int i = 0; i < c.layers; ++i) {
        const std::string b = "blk." + std::to_string(i) + ".";
        add(b + "attn_norm.weight", {C}, {id(R::AttnNorm, i)});
        add(b + "attn_q.weight", {C, Q}, {id(R::AttnQ, i)}, q_heads);
        add(b + "attn_k.weight", {C, KV}, {id(R::AttnK, i)}, k_heads);
        add(b + "attn_v.weight", {C, KV}, {id(R::AttnV, i)});
        if (c.qkv_bias) {
            add(b + "attn_q.bias", {Q}, {id(R::AttnQBias, i)}, q_heads);
            add(b + "attn_k.bias", {KV}, {id(R::AttnKBias, i)}, k_heads);
            add(b + "attn_v.bias", {KV}, {id(R::AttnVBias, i)});
        }
        add(b + "attn_output.weight", {Q, C}, {id(R::AttnO, i)});
        if (c.o_bias) add(b + "attn_output.bias", {C}, {id(R::AttnOBias, i)});
        if (c.qk_norm != QkNorm::None) {
            const bool full = c.qk_norm == QkNorm::Full;
            add(b + "attn_q_norm.weight", {full ? Q : c.head_dim()}, {id(R::AttnQNorm, i)});
            add(b + "attn_k_norm.weight", {full ? KV : c.head_dim()}, {id(R::AttnKNorm, i)});
        }
        add(b + "ffn_norm.weight", {C}, {id(R::FfnNorm, i)});
        if (!c.is_moe_layer(i)) {
            const int64_t M = c.d_mlp;
            add(b + "ffn_gate.weight", {C, M}, {id(R::FfnGate, i)});
            add(b + "ffn_up.weight", {C, M}, {id(R::FfnUp, i)});
            add(b + "ffn_down.weight", {M, C}, {id(R::FfnDown, i)});
            continue;
        }
        const int64_t E = c.experts, X = c.expert_width();
        add(b + "ffn_gate_inp.weight", {C, E}, {id(R::Router, i)});
        std::vector<TensorId> gates, ups, downs;
        for (int e = 0; e < c.experts; ++e) {
            gates.push_back(id(R::FfnGate, i, e));
            ups.push_back(id(R::FfnUp, i, e));
            downs.push_back(id(R::FfnDown, i, e));
        }
        add(b + "ffn_gate_exps.weight", {C, X, E}, std::move(gates));
        add(b + "ffn_up_exps.weight", {C, X, E}, std::move(ups));
        add(b + "ffn_down_exps.weight", {X, C, E}, std::move(downs));
        if (c.shared_ffn > 0) {
            const int64_t S = c.shared_ffn;
            add(b + "ffn_gate_inp_shexp.weight", {C}, {id(R::SharedExpertGate, i)});
            add(b + "ffn_gate_shexp.weight", {C, S}, {id(R::FfnGate, i, kSharedExpert)});
            add(b + "ffn_up_shexp.weight", {C, S}, {id(R::FfnUp, i, kSharedExpert)});
            add(b + "ffn_down_shexp.weight", {S, C}, {id(R::FfnDown, i, kSharedExpert)});
        }
    }
    add("output_norm.weight", {C}, {id(R::FinalNorm)});
    if (!c.tie_embeddings) add("output.weight", {C, V}, {id(R::OutputHead)});
    return out;
}

std::vector<std::pair<std::string, io::GgufValue>> arch_metadata(GgufArch arch,
                                                                 const ModelConfig& c) {
    using io::GgufValue;
    const std::string p = std::string(gguf_arch_name(arch)) + ".";
    std::vector<std::pair<std::string, GgufValue>> kv;
    const auto u32 = [&](const std::string& key, int64_t v) {
        kv.emplace_back(p + key, GgufValue::u32(static_cast<uint32_t>(v)));
    };
    const auto f32 = [&](const std::string& key, float v) {
        kv.emplace_back(p + key, GgufValue::f32(v));
    };
    u32("context_length", c.ctx);
    u32("embedding_length", c.d_model);
    u32("block_count", c.layers);
    if (arch == A::Gpt2) {
        u32("feed_forward_length", c.d_mlp);
        u32("attention.head_count", c.heads);
        u32("attention.head_count_kv", c.heads);
        f32("attention.layer_norm_epsilon", kLayerNormEps);
        return kv;
    }
    const bool moe = c.is_moe();
    u32("feed_forward_length", moe ? c.expert_width() : c.d_mlp);
    u32("attention.head_count", c.heads);
    u32("attention.head_count_kv", c.kv_head_count());
    u32("attention.key_length", c.head_dim());
    u32("attention.value_length", c.head_dim());
    u32("rope.dimension_count", c.head_dim());
    f32("rope.freq_base", c.rope_theta);
    f32("attention.layer_norm_rms_epsilon", c.norm_eps);
    u32("vocab_size", c.vocab);
    if (moe) {
        u32("expert_count", c.experts);
        u32("expert_used_count", c.topk);
        if (arch == A::Qwen2Moe || arch == A::Qwen3Moe)
            u32("expert_feed_forward_length", c.expert_width());
        if (arch == A::Qwen2Moe) u32("expert_shared_feed_forward_length", c.shared_ffn);
    }
    return kv;
}

namespace {

// Reads `<arch>.<key>` as a positive count ≤ limit; a per-layer array must be uniform.
int read_count(const io::GgufFile& f, const std::string& key, int64_t limit, bool required,
               int fallback) {
    const io::GgufValue* v = f.find(key);
    if (!v) {
        if (required) throw Error(f.path() + ": metadata key '" + key + "' is missing");
        return fallback;
    }
    const std::string what = f.path() + ": metadata key '" + key + "'";
    int64_t n;
    if (v->type() == io::GgufType::Array) {
        const std::vector<int64_t> values = v->as_int_array(what);
        if (values.empty()) throw Error(what + " is an empty array");
        if (std::any_of(values.begin(), values.end(), [&](int64_t x) { return x != values[0]; }))
            throw Error(what + " differs between layers; tinygpt's blocks all have one shape");
        n = values[0];
    } else {
        n = v->as_int(what);
    }
    if (n < 1 || n > limit)
        throw Error(what + " is " + std::to_string(n) + ", outside 1 … " + std::to_string(limit));
    return static_cast<int>(n);
}

// A key that would change the function we compute: accepted only at its neutral value.
void refuse_unless_neutral(const io::GgufFile& f, const std::string& key, double neutral_a,
                           double neutral_b, const std::string& meaning) {
    const io::GgufValue* v = f.find(key);
    if (!v) return;
    const std::string what = f.path() + ": metadata key '" + key + "'";
    double x;
    if (v->type() == io::GgufType::Bool)
        x = v->as_bool(what) ? 1 : 0;
    else
        x = v->as_float(what);
    if (x != neutral_a && x != neutral_b)
        throw Error(what + " = " + std::to_string(x) + " (" + meaning +
                    ") is not something tinygpt computes");
}

}  // namespace

ModelConfig config_from_gguf(const io::GgufFile& f, GgufArch arch) {
    const std::string p = std::string(gguf_arch_name(arch)) + ".";
    constexpr int64_t kMaxWidth = int64_t{1} << 20, kMaxLayers = 4096, kMaxCtx = int64_t{1} << 24;
    ModelConfig c;
    c.preset = "custom";
    c.arch = arch == A::Gpt2 ? Arch::Gpt : Arch::Llama;
    c.ctx = read_count(f, p + "context_length", kMaxCtx, true, 0);
    c.d_model = read_count(f, p + "embedding_length", kMaxWidth, true, 0);
    c.layers = read_count(f, p + "block_count", kMaxLayers, true, 0);
    c.heads = read_count(f, p + "attention.head_count", kMaxWidth, true, 0);
    const int kv_heads = read_count(f, p + "attention.head_count_kv", kMaxWidth, false, c.heads);
    const int ff = read_count(f, p + "feed_forward_length", kMaxWidth,
                              arch != A::Qwen3Moe && arch != A::Qwen2Moe, 0);
    const io::GgufTensor* embd = f.find_tensor("token_embd.weight");
    if (!embd || embd->ne.size() != 2)
        throw Error(f.path() + ": tensor 'token_embd.weight' is missing or not 2-D");
    c.vocab = static_cast<int>(std::min<int64_t>(embd->ne[1], kMaxWidth * 16));
    if (arch == A::Gpt2) {
        c.d_mlp = ff;
        if (kv_heads != c.heads)
            throw Error(f.path() + ": gpt2 with grouped-query attention is not a GPT block");
        const io::GgufValue* eps = f.find(p + "attention.layer_norm_epsilon");
        if (!eps)
            throw Error(f.path() + ": metadata key '" + p +
                        "attention.layer_norm_epsilon' is missing");
        const double e =
            eps->as_float(f.path() + ": metadata key '" + p + "attention.layer_norm_epsilon'");
        if (std::fabs(e - kLayerNormEps) > 1e-9)
            throw Error(f.path() + ": LayerNorm epsilon " + std::to_string(e) +
                        " differs from the GPT family's 1e-5");
        c.validate();
        return c;
    }
    c.kv_heads = kv_heads == c.heads ? 0 : kv_heads;
    const int default_hd = c.d_model / c.heads;
    const int key_len = read_count(f, p + "attention.key_length", kMaxWidth, false, default_hd);
    const int value_len = read_count(f, p + "attention.value_length", kMaxWidth, false, default_hd);
    if (key_len != value_len)
        throw Error(f.path() + ": attention key_length " + std::to_string(key_len) +
                    " ≠ value_length " + std::to_string(value_len));
    const int rot = read_count(f, p + "rope.dimension_count", kMaxWidth, false, key_len);
    if (rot != key_len)
        throw Error(f.path() + ": rope.dimension_count " + std::to_string(rot) +
                    " rotates part of each head (head_dim " + std::to_string(key_len) +
                    "); tinygpt rotates whole heads");
    c.head_size = key_len == default_hd && default_hd * c.heads == c.d_model ? 0 : key_len;
    if (const io::GgufValue* eps = f.find(p + "attention.layer_norm_rms_epsilon"))
        c.norm_eps = static_cast<float>(
            eps->as_float(f.path() + ": metadata key '" + p + "attention.layer_norm_rms_epsilon'"));
    else
        throw Error(f.path() + ": metadata key '" + p +
                    "attention.layer_norm_rms_epsilon' is missing");
    if (const io::GgufValue* base = f.find(p + "rope.freq_base"))
        c.rope_theta = static_cast<float>(
            base->as_float(f.path() + ": metadata key '" + p + "rope.freq_base'"));
    if (const io::GgufValue* scaling = f.find(p + "rope.scaling.type")) {
        const std::string& t =
            scaling->as_string(f.path() + ": metadata key '" + p + "rope.scaling.type'");
        if (t != "none" && t != "linear")
            throw Error(f.path() + ": RoPE scaling '" + t + "' is not something tinygpt computes");
    }
    refuse_unless_neutral(f, p + "rope.scaling.factor", 0, 1, "RoPE scaling");
    refuse_unless_neutral(f, p + "rope.scale_linear", 0, 1, "RoPE scaling");
    refuse_unless_neutral(f, p + "expert_weights_scale", 0, 1, "scaled expert gates");
    refuse_unless_neutral(f, p + "expert_gating_func", 0, 1, "non-softmax gating");
    refuse_unless_neutral(f, p + "attention.causal", 1, 1, "non-causal attention");
    refuse_unless_neutral(f, p + "attention.sliding_window", 0, 0, "sliding-window attention");
    refuse_unless_neutral(f, p + "logit_scale", 0, 1, "scaled logits");
    refuse_unless_neutral(f, p + "final_logit_softcapping", 0, 0, "logit soft-capping");
    refuse_unless_neutral(f, p + "attn_logit_softcapping", 0, 0, "attention soft-capping");

    c.qkv_bias = f.find_tensor("blk.0.attn_q.bias") || f.find_tensor("blk.0.attn_k.bias") ||
                 f.find_tensor("blk.0.attn_v.bias");
    c.o_bias = f.find_tensor("blk.0.attn_output.bias") != nullptr;
    c.tie_embeddings = f.find_tensor("output.weight") == nullptr;
    c.qk_norm = arch == A::Qwen3 || arch == A::Qwen3Moe ? QkNorm::PerHead
                : arch == A::Olmoe                      ? QkNorm::Full
                                                        : QkNorm::None;
    const int experts = read_count(f, p + "expert_count", 1 << 16, false, 0);
    const bool moe = experts > 0 && (is_moe_arch(arch));
    if (arch == A::Qwen2Moe || arch == A::Qwen3Moe || arch == A::Olmoe) {
        if (experts < 1)
            throw Error(f.path() + ": metadata key '" + p + "expert_count' is missing");
    }
    if (moe) {
        c.experts = experts;
        c.topk = read_count(f, p + "expert_used_count", experts, true, 0);
        int width = ff;
        if (arch == A::Qwen2Moe || arch == A::Qwen3Moe)
            width = read_count(f, p + "expert_feed_forward_length", kMaxWidth, false,
                               ff > 0 ? ff / c.topk : 0);
        if (width < 1)
            throw Error(f.path() + ": metadata key '" + p +
                        "expert_feed_forward_length' is missing");
        c.moe_ffn = width;
        c.d_mlp = width;
        c.norm_topk = renormalises_gates(arch) ? NormTopk::On : NormTopk::Off;
        if (arch == A::Qwen2Moe)
            c.shared_ffn =
                read_count(f, p + "expert_shared_feed_forward_length", kMaxWidth, false, ff);
        if (arch == A::Qwen2Moe && c.shared_ffn < 1)
            throw Error(f.path() + ": metadata key '" + p +
                        "expert_shared_feed_forward_length' is missing");
    } else {
        c.d_mlp = ff;
    }
    if (square_attention(arch) && c.q_width() != c.d_model)
        throw Error(f.path() + ": " + gguf_arch_name(arch) + " needs heads × head_dim = d_model");
    c.validate();
    return c;
}

int64_t llama_rope_source_row(int64_t row, int head_dim, bool to_llama) {
    const int64_t half = head_dim / 2;
    const int64_t base = row / head_dim * head_dim, j = row % head_dim;
    if (to_llama)  // adjacent pairs (2i, 2i + 1) ← rotate-half rows i and i + half
        return base + j / 2 + (j % 2) * half;
    return base + (j < half ? 2 * j : 2 * (j - half) + 1);
}

namespace {

void move_rows(const float* src, float* dst, int heads, int head_dim, int64_t cols, bool to_llama) {
    const size_t row = static_cast<size_t>(cols) * sizeof(float);
    for (int64_t r = 0; r < static_cast<int64_t>(heads) * head_dim; ++r)
        std::memcpy(dst + r * cols, src + llama_rope_source_row(r, head_dim, to_llama) * cols, row);
}

}  // namespace

void permute_rows_for_llama(const float* src, float* dst, int heads, int head_dim, int64_t cols) {
    move_rows(src, dst, heads, head_dim, cols, true);
}

void unpermute_rows_from_llama(const float* src, float* dst, int heads, int head_dim,
                               int64_t cols) {
    move_rows(src, dst, heads, head_dim, cols, false);
}

}  // namespace tinygpt::gguf
