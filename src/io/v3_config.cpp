// The model config <-> the v3 header's "config" object (docs/FORMAT.md): both families, the
// MoE options and the per-layer layout. Every field is range-checked on the way in, and a key
// this version does not know is refused rather than ignored.
#include <algorithm>
#include <initializer_list>

#include "io/format_internal.h"

namespace tinygpt::io {

namespace {

constexpr int64_t kMaxDim = int64_t{1} << 24;
constexpr int64_t kMaxLayers = int64_t{1} << 16;

void reject_unknown_keys(const json& j, std::initializer_list<const char*> known,
                         const std::string& where) {
    for (auto it = j.begin(); it != j.end(); ++it) {
        if (std::find_if(known.begin(), known.end(),
                         [&](const char* k) { return it.key() == k; }) == known.end())
            throw Error(where + " key '" + it.key() +
                        "' is not understood by this tinygpt (a feature of a newer version?)");
    }
}

void moe_config_from_json(const json& j, ModelConfig& cfg) {
    as_object(j, "config.moe");
    reject_unknown_keys(j,
                        {"ffn", "shared_ffn", "every", "dense_first", "norm_topk", "z_loss_weight",
                         "jitter", "capacity_factor", "layers"},
                        "config.moe");
    auto count = [&](const char* key, int64_t lo) -> int {
        const json* v = optional_field(j, key);
        const std::string where = std::string("config.moe.") + key;
        return v ? static_cast<int>(as_int(*v, where, lo, kMaxDim)) : -1;
    };
    if (int v = count("ffn", 1); v > 0) cfg.moe_ffn = v == cfg.d_mlp ? 0 : v;
    if (int v = count("shared_ffn", 0); v >= 0) cfg.shared_ffn = v;
    if (int v = count("every", 1); v > 0) cfg.moe_every = v;
    if (int v = count("dense_first", 0); v >= 0) cfg.moe_dense_first = v;
    if (const json* v = optional_field(j, "norm_topk")) {
        try {
            cfg.norm_topk = parse_norm_topk(as_string(*v, "config.moe.norm_topk"));
        } catch (const Error& e) {
            throw Error(std::string("header field 'config.moe.norm_topk': ") + e.what());
        }
    }
    auto real = [&](const char* key, float& out) {
        if (const json* v = optional_field(j, key))
            out = json_to_float(*v, std::string("config.moe.") + key);
    };
    real("z_loss_weight", cfg.z_loss_weight);
    real("jitter", cfg.jitter);
    real("capacity_factor", cfg.capacity_factor);
    // The stored layout must be the one the rules give (a file from a tool with other rules is
    // refused rather than silently misread).
    if (const json* kinds = optional_field(j, "layers")) {
        as_array(*kinds, "config.moe.layers");
        bool same = kinds->size() == static_cast<size_t>(cfg.layers);
        for (int l = 0; same && l < cfg.layers; ++l)
            same = (*kinds)[l].is_string() &&
                   (*kinds)[l].get<std::string>() == (cfg.is_moe_layer(l) ? "moe" : "dense");
        if (!same)
            throw Error(
                "header field 'config.moe.layers' does not match moe.every / moe.dense_first");
    }
}

}  // namespace

json config_to_json(const ModelConfig& cfg) {
    json j{{"arch", arch_name(cfg.arch)},
           {"preset", cfg.preset},
           {"vocab", cfg.vocab},
           {"ctx", cfg.ctx},
           {"layers", cfg.layers},
           {"d_model", cfg.d_model},
           {"heads", cfg.heads},
           {"d_mlp", cfg.d_mlp},
           {"experts", cfg.experts},
           {"topk", cfg.topk},
           {"aux_weight", float_to_json(cfg.aux_weight)}};
    // The per-layer layout and routing options, so nothing assumes every block looks the same;
    // left out when they are the original's (every block MoE, its routing), so such files stay
    // readable by every v3 reader.
    const bool original_moe = cfg.moe_every == 1 && cfg.moe_dense_first == 0 &&
                              cfg.expert_width() == cfg.d_mlp && cfg.shared_ffn == 0 &&
                              cfg.norm_topk == NormTopk::Auto && cfg.z_loss_weight == 0.0f &&
                              cfg.jitter == 0.0f && cfg.capacity_factor == 0.0f;
    if (cfg.is_moe() && !original_moe) {
        j["moe"] = json{{"ffn", cfg.expert_width()},
                        {"shared_ffn", cfg.shared_ffn},
                        {"every", cfg.moe_every},
                        {"dense_first", cfg.moe_dense_first},
                        {"norm_topk", norm_topk_name(cfg.norm_topk)},
                        {"z_loss_weight", float_to_json(cfg.z_loss_weight)},
                        {"jitter", float_to_json(cfg.jitter)},
                        {"capacity_factor", float_to_json(cfg.capacity_factor)},
                        {"layers", [&] {
                             json kinds = json::array();
                             for (int l = 0; l < cfg.layers; ++l)
                                 kinds.push_back(cfg.is_moe_layer(l) ? "moe" : "dense");
                             return kinds;
                         }()}};
    }
    if (cfg.is_llama()) {
        j["kv_heads"] = cfg.kv_head_count();
        j["norm_eps"] = float_to_json(cfg.norm_eps);
        j["rope_theta"] = float_to_json(cfg.rope_theta);
        j["qkv_bias"] = cfg.qkv_bias;
        j["qk_norm"] = cfg.qk_norm;
        j["tie_embeddings"] = cfg.tie_embeddings;
    }
    return j;
}

ModelConfig config_from_json(const json& j) {
    as_object(j, "config");
    const std::string& arch_text = as_string(require_field(j, "arch", "config"), "config.arch");
    ModelConfig cfg;
    try {
        cfg.arch = parse_arch(arch_text);
    } catch (const Error&) {
        throw Error("unsupported model architecture '" + arch_text +
                    "' (this tinygpt knows: gpt, llama)");
    }
    if (cfg.is_llama()) {
        reject_unknown_keys(j,
                            {"arch", "preset", "vocab", "ctx", "layers", "d_model", "heads",
                             "d_mlp", "experts", "topk", "aux_weight", "moe", "kv_heads",
                             "norm_eps", "rope_theta", "qkv_bias", "qk_norm", "tie_embeddings"},
                            "config");
    } else {
        reject_unknown_keys(j,
                            {"arch", "preset", "vocab", "ctx", "layers", "d_model", "heads",
                             "d_mlp", "experts", "topk", "aux_weight", "moe"},
                            "config");
    }
    cfg.preset = "custom";
    if (const json* preset = optional_field(j, "preset"))
        cfg.preset = as_string(*preset, "config.preset");
    auto dim = [&](const char* key, int64_t hi) {
        return static_cast<int>(
            as_int(require_field(j, key, "config"), std::string("config.") + key, 1, hi));
    };
    cfg.vocab = dim("vocab", kMaxDim);
    cfg.ctx = dim("ctx", kMaxDim);
    cfg.layers = dim("layers", kMaxLayers);
    cfg.d_model = dim("d_model", kMaxDim);
    cfg.heads = dim("heads", kMaxDim);
    cfg.d_mlp = dim("d_mlp", kMaxDim);
    cfg.experts = dim("experts", 4096);
    cfg.topk = dim("topk", 4096);
    cfg.aux_weight = json_to_float(require_field(j, "aux_weight", "config"), "config.aux_weight");
    if (const json* moe = optional_field(j, "moe")) moe_config_from_json(*moe, cfg);
    if (cfg.is_llama()) {
        cfg.kv_heads = dim("kv_heads", kMaxDim);
        cfg.norm_eps = json_to_float(require_field(j, "norm_eps", "config"), "config.norm_eps");
        cfg.rope_theta =
            json_to_float(require_field(j, "rope_theta", "config"), "config.rope_theta");
        cfg.qkv_bias = as_bool(require_field(j, "qkv_bias", "config"), "config.qkv_bias");
        cfg.qk_norm = as_bool(require_field(j, "qk_norm", "config"), "config.qk_norm");
        cfg.tie_embeddings =
            as_bool(require_field(j, "tie_embeddings", "config"), "config.tie_embeddings");
    }
    return cfg;
}

}  // namespace tinygpt::io
