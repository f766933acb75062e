// The model config <-> the v3 header's "config" object (docs/FORMAT.md): both families, the
// MoE options and the per-layer layout. Every field is range-checked on the way in, and a key
// this version does not know is refused rather than ignored.
#include <algorithm>
#include <initializer_list>

#include "io/format_internal.h"

namespace tinygpt::io {

namespace {

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
    // Files before the explicit list stored only the rule; newer ones store the list (and, when
    // it is a rule's, the rule too: both must then agree).
    const int every = count("every", 1), dense_first = count("dense_first", 0);
    if (every > 0 || dense_first >= 0)
        cfg.moe_layers = moe_layout_rule(cfg.layers, std::max(every, 1), std::max(dense_first, 0));
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
    if (const json* kinds = optional_field(j, "layers")) {
        as_array(*kinds, "config.moe.layers");
        if (kinds->size() != static_cast<size_t>(cfg.layers))
            throw Error("header field 'config.moe.layers' has " + std::to_string(kinds->size()) +
                        " entries for " + std::to_string(cfg.layers) + " layers");
        std::vector<char> list(cfg.layers);
        for (int l = 0; l < cfg.layers; ++l) {
            const std::string& kind =
                as_string((*kinds)[l], "config.moe.layers[" + std::to_string(l) + "]");
            if (kind != "moe" && kind != "dense")
                throw Error("header field 'config.moe.layers[" + std::to_string(l) +
                            "]' must be \"moe\" or \"dense\" (got " + excerpt(kind) + ")");
            list[l] = kind == "moe";
        }
        if (!cfg.moe_layers.empty() && cfg.moe_layers != list)
            throw Error(
                "header field 'config.moe.layers' does not match moe.every / moe.dense_first");
        cfg.moe_layers = std::move(list);
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
    const bool original_moe = cfg.all_layers_moe() && cfg.expert_width() == cfg.d_mlp &&
                              cfg.shared_ffn == 0 && cfg.norm_topk == NormTopk::Auto &&
                              cfg.z_loss_weight == 0.0f && cfg.jitter == 0.0f &&
                              cfg.capacity_factor == 0.0f;
    if (cfg.is_moe() && !original_moe) {
        j["moe"] = json{{"ffn", cfg.expert_width()},
                        {"shared_ffn", cfg.shared_ffn},
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
        // A bool as before for none / per head; "full" for the whole-projection norm.
        if (cfg.qk_norm == QkNorm::Full)
            j["qk_norm"] = "full";
        else
            j["qk_norm"] = cfg.qk_norm == QkNorm::PerHead;
        if (cfg.head_size > 0 && cfg.head_size * cfg.heads != cfg.d_model)
            j["head_dim"] = cfg.head_size;
        if (cfg.o_bias) j["o_bias"] = true;
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
        reject_unknown_keys(j, {"arch",       "preset",  "vocab",          "ctx",      "layers",
                                "d_model",    "heads",   "d_mlp",          "experts",  "topk",
                                "aux_weight", "moe",     "kv_heads",       "norm_eps", "rope_theta",
                                "qkv_bias",   "qk_norm", "tie_embeddings", "head_dim", "o_bias"},
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
        const json& qk = require_field(j, "qk_norm", "config");
        if (qk.is_string()) {
            if (qk.get<std::string>() != "full")
                throw Error("header field 'config.qk_norm' must be true, false or \"full\" (got " +
                            excerpt(qk) + ")");
            cfg.qk_norm = QkNorm::Full;
        } else {
            cfg.qk_norm = as_bool(qk, "config.qk_norm") ? QkNorm::PerHead : QkNorm::None;
        }
        if (const json* ob = optional_field(j, "o_bias"))
            cfg.o_bias = as_bool(*ob, "config.o_bias");
        if (const json* hd = optional_field(j, "head_dim"))
            cfg.head_size = static_cast<int>(as_int(*hd, "config.head_dim", 2, kMaxDim));
        cfg.tie_embeddings =
            as_bool(require_field(j, "tie_embeddings", "config"), "config.tie_embeddings");
    }
    return cfg;
}

}  // namespace tinygpt::io
