#include "model/config.h"

#include <cstdio>

#include "util/error.h"

namespace tinygpt {

namespace {

struct PresetShape {
    const char* name;
    int layers, d_model, heads, ctx, d_mlp;
};

// original-tinygpt.md §2.1
constexpr PresetShape kPresets[] = {
    {"tiny", 4, 128, 4, 128, 512},          {"small", 6, 192, 6, 256, 768},
    {"huge", 12, 256, 8, 256, 1024},        {"mega", 24, 512, 8, 1024, 2048},
    {"behemoth", 32, 1024, 16, 1024, 4096}, {"titan", 48, 1536, 24, 1024, 6144},
};

}  // namespace

void ModelConfig::validate() const {
    require(layers >= 1, "--layers must be at least 1 (got " + std::to_string(layers) + ")");
    require(d_model >= 1, "--d-model must be at least 1 (got " + std::to_string(d_model) + ")");
    require(heads >= 1, "--heads must be at least 1 (got " + std::to_string(heads) + ")");
    require(d_model % heads == 0, "--d-model (" + std::to_string(d_model) +
                                      ") must be divisible by --heads (" + std::to_string(heads) +
                                      ")");
    require(d_mlp >= 1, "--d-mlp must be at least 1 (got " + std::to_string(d_mlp) + ")");
    require(ctx >= 1, "--ctx must be at least 1 (got " + std::to_string(ctx) + ")");
    require(vocab >= 1, "vocabulary size must be at least 1");
    require(experts >= 1, "--moe-experts must be at least 1 (got " + std::to_string(experts) + ")");
    require(experts <= 4096,
            "--moe-experts must be at most 4096 (got " + std::to_string(experts) + ")");
    require(topk >= 1, "--moe-topk must be at least 1 (got " + std::to_string(topk) + ")");
    require(topk <= experts, "--moe-topk (" + std::to_string(topk) +
                                 ") cannot exceed --moe-experts (" + std::to_string(experts) + ")");
    require(aux_weight >= 0.0f && aux_weight < 1e30f,
            "--moe-aux-weight must be a finite number >= 0");
}

int64_t ModelConfig::mlp_params() const {
    return int64_t{d_mlp} * d_model + d_mlp + int64_t{d_model} * d_mlp + d_model;
}

int64_t ModelConfig::total_params() const {
    const int64_t C = d_model;
    const int64_t attention = 4 * (C * C + C);
    const int64_t norms = 4 * C;
    const int64_t ffn = is_moe() ? C * experts + experts * mlp_params() : mlp_params();
    return int64_t{vocab} * C + int64_t{ctx} * C + 2 * C + layers * (attention + norms + ffn);
}

int64_t ModelConfig::active_params() const {
    if (!is_moe()) return total_params();
    return total_params() - int64_t{layers} * (experts - topk) * mlp_params();
}

std::string ModelConfig::describe() const {
    char buf[256];
    std::snprintf(buf, sizeof buf, "%s · %d layers · d_model %d · %d heads · d_mlp %d · ctx %d",
                  preset.c_str(), layers, d_model, heads, d_mlp, ctx);
    std::string out = buf;
    if (is_moe()) {
        std::snprintf(buf, sizeof buf, " · MoE %d experts top-%d (%s dispatch)", experts, topk,
                      dispatch == DispatchMode::Sparse ? "sparse" : "dense");
        out += buf;
    }
    return out;
}

ModelConfig preset_config(const std::string& name) {
    for (const auto& p : kPresets) {
        if (name == p.name) {
            ModelConfig cfg;
            cfg.preset = p.name;
            cfg.layers = p.layers;
            cfg.d_model = p.d_model;
            cfg.heads = p.heads;
            cfg.ctx = p.ctx;
            cfg.d_mlp = p.d_mlp;
            return cfg;
        }
    }
    std::string known;
    for (const auto& p : kPresets) known += std::string(known.empty() ? "" : ", ") + p.name;
    throw Error("unknown preset '" + name + "' (known: " + known + ")");
}

std::vector<std::string> preset_names() {
    std::vector<std::string> names;
    for (const auto& p : kPresets) names.emplace_back(p.name);
    return names;
}

int default_batch_for(int d_model) {
    if (d_model >= 1024) return 2;
    if (d_model >= 512) return 4;
    if (d_model >= 256) return 8;
    return 16;
}

double training_flops_per_token(const ModelConfig& cfg) {
    const double C = cfg.d_model, M = cfg.d_mlp, L = cfg.layers;
    const double experts_touched = cfg.is_moe() ? cfg.topk : 1;
    const double router = cfg.is_moe() ? C * cfg.experts : 0.0;
    const double matrix_params =
        L * (4 * C * C + router + experts_touched * 2 * C * M) + cfg.vocab * C;
    return 6.0 * matrix_params + 6.0 * L * cfg.ctx * C;
}

}  // namespace tinygpt
