// config.json <-> ModelConfig for each HF model type. Import reads what the type's modeling
// code reads, with its defaults, and refuses every field value that would make the checkpoint
// compute something we do not (RoPE scaling, sliding windows, other activations, ...).
#include <cmath>

#include "hf/hf_model_type.h"
#include "util/error.h"

namespace tinygpt::hf {

namespace {

using json = nlohmann::json;
using T = ModelType;

struct TypeInfo {
    ModelType type;
    const char* name;
    const char* architecture;
};
constexpr TypeInfo kTypes[] = {
    {T::Llama, "llama", "LlamaForCausalLM"},
    {T::Mistral, "mistral", "MistralForCausalLM"},
    {T::Qwen2, "qwen2", "Qwen2ForCausalLM"},
    {T::Qwen3, "qwen3", "Qwen3ForCausalLM"},
    {T::Mixtral, "mixtral", "MixtralForCausalLM"},
    {T::Qwen2Moe, "qwen2_moe", "Qwen2MoeForCausalLM"},
    {T::Qwen3Moe, "qwen3_moe", "Qwen3MoeForCausalLM"},
    {T::Olmoe, "olmoe", "OlmoeForCausalLM"},
    {T::Gpt2, "gpt2", "GPT2LMHeadModel"},
};

std::string field(const char* key) {
    return std::string("config.json field '") + key + "'";
}

// A field that must be present, or nullptr / the default when absent or null.
const json* get(const json& j, const char* key) {
    auto it = j.find(key);
    return it == j.end() || it->is_null() ? nullptr : &*it;
}
int get_int(const json& j, const char* key, std::optional<int> fallback = std::nullopt, int lo = 1,
            int hi = 1 << 24) {
    const json* v = get(j, key);
    if (!v) {
        if (!fallback) throw Error(field(key) + " is missing");
        return *fallback;
    }
    if (!v->is_number_integer() || v->get<int64_t>() < lo || v->get<int64_t>() > hi)
        throw Error(field(key) + " must be an integer in [" + std::to_string(lo) + ", " +
                    std::to_string(hi) + "] (got " + v->dump() + ")");
    return v->get<int>();
}
double get_real(const json& j, const char* key, double fallback) {
    const json* v = get(j, key);
    if (!v) return fallback;
    if (!v->is_number() || !std::isfinite(v->get<double>()))
        throw Error(field(key) + " must be a finite number (got " + v->dump() + ")");
    return v->get<double>();
}
bool get_bool(const json& j, const char* key, bool fallback) {
    const json* v = get(j, key);
    if (!v) return fallback;
    if (!v->is_boolean())
        throw Error(field(key) + " must be true or false (got " + v->dump() + ")");
    return v->get<bool>();
}
std::string get_string(const json& j, const char* key, const std::string& fallback) {
    const json* v = get(j, key);
    if (!v) return fallback;
    if (!v->is_string()) throw Error(field(key) + " must be a string (got " + v->dump() + ")");
    return v->get<std::string>();
}
[[noreturn]] void unsupported(const char* key, const json& value, const std::string& why) {
    throw Error(field(key) + " = " + value.dump() + " is not supported: " + why);
}

// RoPE: plain rotate-half with one theta. transformers v5 moved theta into rope_parameters.
float rope_theta_of(const json& j, double fallback) {
    if (const json* scaling = get(j, "rope_scaling")) {
        const json* type = scaling->is_object() ? get(*scaling, "rope_type") : nullptr;
        if (!type) type = scaling->is_object() ? get(*scaling, "type") : nullptr;
        if (!type || !type->is_string() || type->get<std::string>() != "default")
            unsupported("rope_scaling", *scaling, "only plain RoPE is implemented");
    }
    double theta = get_real(j, "rope_theta", fallback);
    if (const json* p = get(j, "rope_parameters")) {
        if (!p->is_object()) unsupported("rope_parameters", *p, "must be an object");
        const std::string type = get_string(*p, "rope_type", "default");
        if (type != "default")
            unsupported("rope_parameters", *p, "rope_type '" + type + "' (only plain RoPE)");
        theta = get_real(*p, "rope_theta", theta);
    }
    if (get_real(j, "partial_rotary_factor", 1.0) != 1.0)
        unsupported("partial_rotary_factor", *get(j, "partial_rotary_factor"),
                    "RoPE over part of the head");
    return static_cast<float>(theta);
}

void require_silu(const json& j) {
    const std::string act = get_string(j, "hidden_act", "silu");
    if (act != "silu") unsupported("hidden_act", json(act), "only SwiGLU with silu is implemented");
}

// Sliding-window attention changes the function only when the window is shorter than the
// positions the model can see.
void require_no_sliding_window(const json& j, int ctx, bool gated_by_use_flag) {
    if (gated_by_use_flag && !get_bool(j, "use_sliding_window", false)) return;
    if (const json* w = get(j, "sliding_window"))
        if (!w->is_number_integer() || w->get<int64_t>() < ctx)
            unsupported("sliding_window", *w, "sliding-window attention is not implemented");
    if (const json* types = get(j, "layer_types")) {
        if (!types->is_array()) unsupported("layer_types", *types, "must be a list");
        for (const json& t : *types)
            if (!t.is_string() || t.get<std::string>() != "full_attention")
                unsupported("layer_types", t, "only full attention is implemented");
    }
}

void read_llama_common(const json& j, ImportedConfig& out, bool qwen_head_default) {
    ModelConfig& m = out.model;
    m.arch = Arch::Llama;
    m.preset = "custom";
    m.vocab = get_int(j, "vocab_size");
    m.d_model = get_int(j, "hidden_size");
    m.layers = get_int(j, "num_hidden_layers", std::nullopt, 1, 1 << 16);
    m.heads = get_int(j, "num_attention_heads");
    m.kv_heads = get_int(j, "num_key_value_heads", m.heads);
    m.d_mlp = get_int(j, "intermediate_size");
    m.ctx = get_int(j, "max_position_embeddings", 2048);
    // Qwen3 (dense) defaults head_dim to 128; the others to hidden / heads.
    const int default_head = qwen_head_default ? 128 : m.d_model / m.heads;
    const int head = get_int(j, "head_dim", default_head);
    if (head * m.heads != m.d_model) m.head_size = head;
    m.norm_eps = static_cast<float>(get_real(j, "rms_norm_eps", 1e-6));
    m.rope_theta = rope_theta_of(j, 10000.0);
    m.tie_embeddings = get_bool(j, "tie_word_embeddings", false);
    require_silu(j);
    if (get_bool(j, "mlp_bias", false))
        unsupported("mlp_bias", json(true), "biases in the MLP are not implemented");
    if (const json* clip = get(j, "clip_qkv"))
        unsupported("clip_qkv", *clip, "clipping q/k/v is not implemented");
}

void read_moe_common(const json& j, ModelConfig& m, const char* experts_key, bool norm_default) {
    m.experts = get_int(j, experts_key, std::nullopt, 1, 4096);
    m.topk = get_int(j, "num_experts_per_tok", std::nullopt, 1, 4096);
    m.norm_topk = get_bool(j, "norm_topk_prob", norm_default) ? NormTopk::On : NormTopk::Off;
}

// Qwen's rule: layer i is sparse iff i is not in mlp_only_layers and (i + 1) % step == 0.
void read_qwen_layout(const json& j, ModelConfig& m) {
    const int step = get_int(j, "decoder_sparse_step", 1);
    m.moe_layers = moe_layout_rule(m.layers, step, 0);
    if (const json* only = get(j, "mlp_only_layers")) {
        if (!only->is_array()) unsupported("mlp_only_layers", *only, "must be a list of layers");
        for (const json& l : *only) {
            if (!l.is_number_integer() || l.get<int64_t>() < 0 || l.get<int64_t>() >= m.layers)
                unsupported("mlp_only_layers", *only,
                            "entries must be layer indices below " + std::to_string(m.layers));
            m.moe_layers[l.get<size_t>()] = 0;
        }
    }
    if (m.moe_layer_count() == m.layers) m.moe_layers.clear();
    if (m.moe_layer_count() == 0) m.experts = 1;  // no sparse layer: a dense model
}

ModelConfig read_gpt2(const json& j) {
    ModelConfig m;
    m.arch = Arch::Gpt;
    m.preset = "custom";
    m.vocab = get_int(j, "vocab_size");
    m.d_model = get_int(j, "n_embd");
    m.layers = get_int(j, "n_layer", std::nullopt, 1, 1 << 16);
    m.heads = get_int(j, "n_head");
    m.ctx = get_int(j, "n_positions", 1024);
    m.d_mlp = get_int(j, "n_inner", 4 * m.d_model);
    const std::string act = get_string(j, "activation_function", "gelu_new");
    if (act != "gelu")
        unsupported("activation_function", json(act),
                    "tinygpt's GPT block uses the exact (erf) GELU, \"gelu\"; GPT-2's tanh "
                    "approximation \"gelu_new\" is not implemented");
    const double eps = get_real(j, "layer_norm_epsilon", 1e-5);
    if (std::abs(eps - 1e-5) > 1e-12)
        unsupported("layer_norm_epsilon", json(eps), "the GPT block's LayerNorm uses eps 1e-5");
    if (!get_bool(j, "scale_attn_weights", true))
        unsupported("scale_attn_weights", json(false), "attention is always scaled by 1/sqrt(hd)");
    for (const char* key :
         {"scale_attn_by_inverse_layer_idx", "reorder_and_upcast_attn", "add_cross_attention"})
        if (get_bool(j, key, false)) unsupported(key, json(true), "not implemented");
    if (!get_bool(j, "tie_word_embeddings", true))
        unsupported("tie_word_embeddings", json(false), "the GPT block's head is always tied");
    return m;
}

}  // namespace

const char* model_type_name(ModelType type) {
    for (const TypeInfo& t : kTypes)
        if (t.type == type) return t.name;
    return "?";
}

const char* architecture_name(ModelType type) {
    for (const TypeInfo& t : kTypes)
        if (t.type == type) return t.architecture;
    return "?";
}

ModelType parse_model_type(const std::string& name) {
    std::string known;
    for (const TypeInfo& t : kTypes) {
        if (name == t.name) return t.type;
        known += (known.empty() ? "" : ", ") + std::string(t.name);
    }
    throw Error("model_type '" + name + "' is not supported (tinygpt reads: " + known + ")");
}

bool is_moe_type(ModelType type) {
    return type == T::Mixtral || type == T::Qwen2Moe || type == T::Qwen3Moe || type == T::Olmoe;
}

ImportedConfig config_from_hf(const json& j) {
    if (!j.is_object()) throw Error("config.json is not a JSON object");
    ImportedConfig out;
    const json* type_field = get(j, "model_type");
    if (!type_field || !type_field->is_string()) throw Error(field("model_type") + " is missing");
    out.type = parse_model_type(type_field->get<std::string>());
    ModelConfig& m = out.model;
    switch (out.type) {
        case T::Gpt2:
            m = read_gpt2(j);
            return out;
        case T::Llama:
        case T::Mistral:
            read_llama_common(j, out, false);
            m.qkv_bias = m.o_bias = get_bool(j, "attention_bias", false);
            require_no_sliding_window(j, m.ctx, false);
            break;
        case T::Qwen2:
            read_llama_common(j, out, false);
            m.qkv_bias = true;
            require_no_sliding_window(j, m.ctx, true);
            break;
        case T::Qwen3:
            read_llama_common(j, out, true);
            m.qkv_bias = m.o_bias = get_bool(j, "attention_bias", false);
            m.qk_norm = QkNorm::PerHead;
            require_no_sliding_window(j, m.ctx, true);
            break;
        case T::Mixtral:
            read_llama_common(j, out, false);
            read_moe_common(j, m, "num_local_experts", true);
            m.norm_topk = NormTopk::On;  // Mixtral always renormalises
            m.jitter = static_cast<float>(get_real(j, "router_jitter_noise", 0.0));
            require_no_sliding_window(j, m.ctx, false);
            break;
        case T::Qwen2Moe:
            read_llama_common(j, out, false);
            read_moe_common(j, m, "num_experts", false);
            m.qkv_bias = get_bool(j, "qkv_bias", true);
            m.moe_ffn = get_int(j, "moe_intermediate_size");
            m.shared_ffn = get_int(j, "shared_expert_intermediate_size", 0, 0);
            read_qwen_layout(j, m);
            require_no_sliding_window(j, m.ctx, true);
            break;
        case T::Qwen3Moe:
            read_llama_common(j, out, false);
            read_moe_common(j, m, "num_experts", false);
            m.qkv_bias = m.o_bias = get_bool(j, "attention_bias", false);
            m.qk_norm = QkNorm::PerHead;
            m.moe_ffn = get_int(j, "moe_intermediate_size");
            read_qwen_layout(j, m);
            require_no_sliding_window(j, m.ctx, true);
            break;
        case T::Olmoe:
            read_llama_common(j, out, false);
            read_moe_common(j, m, "num_experts", false);
            m.qkv_bias = m.o_bias = get_bool(j, "attention_bias", false);
            m.qk_norm = QkNorm::Full;
            break;
    }
    if (m.moe_ffn == m.d_mlp) m.moe_ffn = 0;
    if (m.experts > 1 && m.topk > m.experts)
        throw Error(field("num_experts_per_tok") + " (" + std::to_string(m.topk) +
                    ") exceeds the number of experts (" + std::to_string(m.experts) + ")");
    return out;
}

ModelType export_type_for(const ModelConfig& c) {
    const auto refuse = [](const std::string& why) -> ModelType {
        throw Error("no Hugging Face model type computes this model: " + why);
    };
    if (!c.is_llama()) {
        if (c.is_moe())
            refuse(
                "the GPT family's MoE block (LayerNorm + GELU experts) exists in no HF type; "
                "train with --arch llama for an exportable MoE model");
        return T::Gpt2;
    }
    const bool default_head = c.head_size == 0 || c.head_size * c.heads == c.d_model;
    if (!c.is_moe()) {
        if (c.qk_norm == QkNorm::Full)
            refuse("a dense model with --qk-norm full (OLMoE's norm exists only in its MoE type)");
        if (c.qk_norm == QkNorm::PerHead) return T::Qwen3;  // attention_bias covers q/k/v/o
        if (c.qkv_bias && !c.o_bias && default_head) return T::Qwen2;
        return T::Llama;  // attention_bias (q/k/v/o, zero where we have none)
    }
    if (c.shared_ffn > 0) {
        if (c.qk_norm != QkNorm::None)
            refuse("a shared expert with --qk-norm (qwen2_moe has none)");
        if (c.o_bias) refuse("a shared expert with an o_proj bias (qwen2_moe has none)");
        if (!default_head) refuse("a shared expert with --head-dim (qwen2_moe has no head_dim)");
        return T::Qwen2Moe;  // q/k/v bias: zero where we have none
    }
    if (c.qk_norm == QkNorm::PerHead) return T::Qwen3Moe;
    if (c.qk_norm == QkNorm::Full) {
        if (!c.all_layers_moe())
            refuse("dense layers with --qk-norm full (olmoe makes every layer MoE)");
        if (!default_head) refuse("--qk-norm full with --head-dim (olmoe has no head_dim)");
        return T::Olmoe;
    }
    if (c.all_layers_moe() && c.renormalize_topk() && !c.qkv_bias && !c.o_bias) return T::Mixtral;
    return refuse(
        "without q/k norm or a shared expert only mixtral fits, and mixtral has every layer MoE, "
        "renormalised top-k gates and no attention biases; use --qk-norm (qwen3_moe) or "
        "--moe-shared-ffn (qwen2_moe) for dense layers, biases or --moe-norm-topk off");
}

json config_to_hf(const ModelConfig& c, ModelType type, const std::string& torch_dtype,
                  std::optional<int> bos, std::optional<int> eos) {
    json j;
    j["architectures"] = json::array({architecture_name(type)});
    j["model_type"] = model_type_name(type);
    j["torch_dtype"] = torch_dtype;
    j["vocab_size"] = c.vocab;
    j["bos_token_id"] = bos ? json(*bos) : json(nullptr);
    j["eos_token_id"] = eos ? json(*eos) : json(nullptr);
    j["use_cache"] = true;
    if (type == T::Gpt2) {
        j["n_embd"] = c.d_model;
        j["n_layer"] = c.layers;
        j["n_head"] = c.heads;
        j["n_positions"] = c.ctx;
        j["n_ctx"] = c.ctx;
        j["n_inner"] = c.d_mlp;
        j["activation_function"] = "gelu";  // exact erf GELU, as the GPT block computes
        j["layer_norm_epsilon"] = 1e-5;
        j["resid_pdrop"] = j["embd_pdrop"] = j["attn_pdrop"] = 0.0;
        j["scale_attn_weights"] = true;
        j["tie_word_embeddings"] = true;
        return j;
    }
    j["hidden_size"] = c.d_model;
    j["intermediate_size"] = c.d_mlp;
    j["num_hidden_layers"] = c.layers;
    j["num_attention_heads"] = c.heads;
    j["num_key_value_heads"] = c.kv_head_count();
    j["max_position_embeddings"] = c.ctx;
    j["rms_norm_eps"] = c.norm_eps;
    j["rope_theta"] = c.rope_theta;
    j["rope_scaling"] = nullptr;
    j["hidden_act"] = "silu";
    j["tie_word_embeddings"] = c.tie_embeddings;
    j["attention_dropout"] = 0.0;
    if (type != T::Qwen2 && type != T::Qwen2Moe) {
        j["head_dim"] = c.head_dim();
        j["attention_bias"] = c.qkv_bias || c.o_bias;
    }
    if (type == T::Llama) j["mlp_bias"] = false;
    if (type == T::Qwen2 || type == T::Qwen3 || type == T::Qwen2Moe || type == T::Qwen3Moe) {
        j["use_sliding_window"] = false;
        j["sliding_window"] = nullptr;
        j["max_window_layers"] = c.layers;
    }
    if (type == T::Mixtral) {
        j["sliding_window"] = nullptr;
        j["num_local_experts"] = c.experts;
        j["router_jitter_noise"] = 0.0;
    }
    if (is_moe_type(type)) {
        if (type != T::Mixtral) j["num_experts"] = c.experts;
        j["num_experts_per_tok"] = c.topk;
        j["norm_topk_prob"] = c.renormalize_topk();
        j["router_aux_loss_coef"] = c.aux_weight;
        j["output_router_logits"] = false;
    }
    if (type == T::Mixtral || type == T::Olmoe) j["intermediate_size"] = c.expert_width();
    if (type == T::Olmoe) j["clip_qkv"] = nullptr;
    if (type == T::Qwen2Moe || type == T::Qwen3Moe) {
        j["moe_intermediate_size"] = c.expert_width();
        j["decoder_sparse_step"] = 1;
        json dense = json::array();
        for (int l = 0; l < c.layers; ++l)
            if (!c.is_moe_layer(l)) dense.push_back(l);
        j["mlp_only_layers"] = dense;
    }
    if (type == T::Qwen2Moe) j["shared_expert_intermediate_size"] = c.shared_ffn;
    return j;
}

}  // namespace tinygpt::hf
