#include "model/config.h"

#include <algorithm>
#include <cmath>
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

std::string str(int v) {
    return std::to_string(v);
}

}  // namespace

int swiglu_width(int d_model) {
    const int raw = (8 * d_model + 2) / 3;
    return (raw + 31) / 32 * 32;
}

const char* arch_name(Arch arch) {
    return arch == Arch::Llama ? "llama" : "gpt";
}

Arch parse_arch(const std::string& name) {
    if (name == "gpt") return Arch::Gpt;
    if (name == "llama") return Arch::Llama;
    throw Error("unknown architecture '" + name + "' (known: gpt, llama)");
}

const char* norm_topk_name(NormTopk mode) {
    switch (mode) {
        case NormTopk::On:
            return "on";
        case NormTopk::Off:
            return "off";
        default:
            return "auto";
    }
}

NormTopk parse_norm_topk(const std::string& name) {
    if (name == "auto") return NormTopk::Auto;
    if (name == "on" || name == "true" || name == "1") return NormTopk::On;
    if (name == "off" || name == "false" || name == "0") return NormTopk::Off;
    throw Error("--moe-norm-topk must be on, off or auto (got '" + name + "')");
}

const char* qk_norm_name(QkNorm mode) {
    switch (mode) {
        case QkNorm::PerHead:
            return "head";
        case QkNorm::Full:
            return "full";
        default:
            return "none";
    }
}

QkNorm parse_qk_norm(const std::string& name) {
    if (name == "none" || name == "off") return QkNorm::None;
    if (name == "head" || name == "per-head" || name == "on") return QkNorm::PerHead;
    if (name == "full") return QkNorm::Full;
    throw Error("q/k norm must be none, head or full (got '" + name + "')");
}

std::vector<char> moe_layout_rule(int layers, int every, int dense_first) {
    require(every >= 1, "--moe-every must be at least 1 (got " + str(every) + ")");
    require(dense_first >= 0, "--moe-dense-first must be >= 0 (got " + str(dense_first) + ")");
    std::vector<char> moe(static_cast<size_t>(std::max(layers, 0)));
    for (int l = 0; l < layers; ++l) moe[l] = l >= dense_first && (l + 1) % every == 0;
    return moe;
}

int ModelConfig::moe_layer_count() const {
    // Without a per-layer list every layer is MoE: no loop, so that an absurd --layers is
    // refused by the memory check at once.
    if (experts <= 1) return 0;
    if (moe_layers.empty()) return layers;
    int n = 0;
    for (size_t l = 0; l < moe_layers.size() && l < static_cast<size_t>(std::max(layers, 0)); ++l)
        n += moe_layers[l] != 0;
    return n;
}

MoeShape ModelConfig::moe_shape(int tokens) const {
    MoeShape s{tokens, d_model, expert_width(), experts, topk};
    s.ffn = is_llama() ? FfnKind::SwiGlu : FfnKind::Gelu;
    s.renormalize = renormalize_topk();
    s.with_jitter = jitter > 0.0f;
    return s;
}

MoeOptions ModelConfig::moe_options() const {
    MoeOptions o;
    o.jitter = jitter;
    o.capacity_factor = capacity_factor;
    return o;
}

void ModelConfig::validate() const {
    require(layers >= 1, "--layers must be at least 1 (got " + str(layers) + ")");
    require(d_model >= 1, "--d-model must be at least 1 (got " + str(d_model) + ")");
    require(heads >= 1, "--heads must be at least 1 (got " + str(heads) + ")");
    require(head_size >= 0, "head_dim must be at least 1 (got " + str(head_size) + ")");
    if (head_size == 0)
        require(d_model % heads == 0, "--d-model (" + str(d_model) +
                                          ") must be divisible by --heads (" + str(heads) + ")");
    require(d_mlp >= 1, "--d-mlp must be at least 1 (got " + str(d_mlp) + ")");
    require(ctx >= 1, "--ctx must be at least 1 (got " + str(ctx) + ")");
    require(vocab >= 1, "vocabulary size must be at least 1");
    require(experts >= 1, "--moe-experts must be at least 1 (got " + str(experts) + ")");
    require(experts <= 4096, "--moe-experts must be at most 4096 (got " + str(experts) + ")");
    require(topk >= 1, "--moe-topk must be at least 1 (got " + str(topk) + ")");
    require(topk <= experts,
            "--moe-topk (" + str(topk) + ") cannot exceed --moe-experts (" + str(experts) + ")");
    require(moe_ffn >= 0, "--moe-ffn must be at least 1 (got " + str(moe_ffn) + ")");
    require(shared_ffn >= 0, "--moe-shared-ffn must be >= 0 (got " + str(shared_ffn) + ")");
    require(moe_layers.empty() || moe_layers.size() == static_cast<size_t>(layers),
            "the MoE layer list has " + str(static_cast<int>(moe_layers.size())) + " entries for " +
                str(layers) + " layers");
    auto finite_nonneg = [](float v) { return v >= 0.0f && v < 1e30f; };
    require(finite_nonneg(aux_weight), "--moe-aux-weight must be a finite number >= 0");
    require(finite_nonneg(z_loss_weight), "--moe-z-loss must be a finite number >= 0");
    require(jitter >= 0.0f && jitter < 1.0f, "--moe-jitter must be in [0, 1)");
    require(capacity_factor == 0.0f || (capacity_factor > 0.0f && capacity_factor < 1e6f),
            "--moe-capacity-factor must be > 0 (or 0 for dropless)");
    if (experts > 1)
        require(moe_layer_count() > 0,
                "the MoE layer layout leaves no MoE layer in " + str(layers) + " layers");
    if (!is_llama()) {
        const char* llama_only = kv_heads != 0 && kv_heads != heads               ? "--kv-heads"
                                 : qkv_bias                                       ? "--qkv-bias"
                                 : o_bias                                         ? "an o_proj bias"
                                 : qk_norm != QkNorm::None                        ? "--qk-norm"
                                 : head_size != 0 && head_size * heads != d_model ? "--head-dim"
                                 : tie_embeddings ? "--tie-embeddings"
                                 : shared_ffn > 0 ? "--moe-shared-ffn"
                                                  : nullptr;
        require(llama_only == nullptr,
                std::string(llama_only ? llama_only : "") + " needs --arch llama");
        return;
    }
    require(kv_heads >= 0, "--kv-heads must be at least 1 (got " + str(kv_heads) + ")");
    require(heads % kv_head_count() == 0,
            "--kv-heads (" + str(kv_head_count()) + ") must divide --heads (" + str(heads) + ")");
    require(head_dim() % 2 == 0,
            "rotary embeddings need an even head size (got " + str(head_dim()) + ")");
    require(norm_eps > 0.0f && norm_eps < 1.0f, "--norm-eps must be in (0, 1)");
    require(rope_theta > 1.0f && std::isfinite(rope_theta), "--rope-theta must be > 1");
}

namespace {

// Parameter counts in any arithmetic type: int64_t for the exact count, double for an overflow-
// free estimate of a config read from an untrusted file.
template <typename T>
T ffn_params(const ModelConfig& c, T width) {
    const T C = c.d_model;
    return c.is_llama() ? 3 * C * width : 2 * width * C + width + C;
}

template <typename T>
T qk_norm_params(const ModelConfig& c) {
    if (c.qk_norm == QkNorm::PerHead) return 2 * T(c.head_dim());
    if (c.qk_norm == QkNorm::Full) return T(c.q_width()) + T(c.kv_width());
    return 0;
}

template <typename T>
T count_params(const ModelConfig& c) {
    const T C = c.d_model, V = c.vocab, W = c.qkv_width(), Q = c.q_width(), E = c.experts;
    const T expert = ffn_params<T>(c, c.expert_width()), dense = ffn_params<T>(c, c.d_mlp);
    const T moe_layers = c.moe_layer_count(), dense_layers = c.layers - c.moe_layer_count();
    T total = V * C;
    T per_layer;
    if (c.is_llama()) {
        per_layer = W * C + Q * C + (c.qkv_bias ? W : 0) + (c.o_bias ? C : 0) +
                    qk_norm_params<T>(c) + 2 * C;
        total += C + (c.tie_embeddings ? 0 : V * C);
    } else {
        per_layer = 4 * (C * C + C) + 4 * C;
        total += T(c.ctx) * C + 2 * C;
    }
    const T shared = c.shared_ffn > 0 ? 3 * C * T(c.shared_ffn) + C : 0;
    return total + T(c.layers) * per_layer + dense_layers * dense +
           moe_layers * (C * E + E * expert + shared);
}

}  // namespace

int64_t ModelConfig::expert_params() const {
    return ffn_params<int64_t>(*this, expert_width());
}

int64_t ModelConfig::dense_ffn_params() const {
    return ffn_params<int64_t>(*this, d_mlp);
}

int64_t ModelConfig::total_params() const {
    return count_params<int64_t>(*this);
}

double ModelConfig::total_params_estimate() const {
    return count_params<double>(*this);
}

int64_t ModelConfig::active_params() const {
    return total_params() - int64_t{moe_layer_count()} * (experts - topk) * expert_params();
}

std::string ModelConfig::describe() const {
    char buf[320];
    std::string heads_text = str(heads) + " heads";
    if (is_llama() && kv_head_count() != heads) heads_text += " (" + str(kv_head_count()) + " kv)";
    if (head_size > 0 && head_size * heads != d_model) heads_text += " × " + str(head_size);
    std::snprintf(buf, sizeof buf, "%s · %s · %d layers · d_model %d · %s · d_mlp %d · ctx %d",
                  arch_name(arch), preset.c_str(), layers, d_model, heads_text.c_str(), d_mlp, ctx);
    std::string out = buf;
    if (is_moe()) {
        std::snprintf(buf, sizeof buf, " · MoE %d experts top-%d", experts, topk);
        out += buf;
        if (expert_width() != d_mlp) out += " width " + str(expert_width());
        if (shared_ffn > 0) out += " + shared " + str(shared_ffn);
        const int moe_count = moe_layer_count();
        if (moe_count != layers) out += " in " + str(moe_count) + "/" + str(layers) + " layers";
        out += std::string(" (") + (dispatch == DispatchMode::Sparse ? "sparse" : "dense") +
               " dispatch)";
    }
    return out;
}

ModelConfig preset_config(const std::string& name, Arch arch) {
    ModelConfig cfg;
    cfg.arch = arch;
    if (name == "tutorial") {
        // The MoE tutorial's configuration (GPT-2 small shape, 8 SwiGLU experts, top-2); it
        // describes a Llama-style block, so this preset always is one.
        cfg.arch = Arch::Llama;
        cfg.preset = name;
        cfg.layers = 12;
        cfg.d_model = 768;
        cfg.heads = 12;
        cfg.ctx = 1024;
        cfg.d_mlp = swiglu_width(768);
        cfg.experts = 8;
        cfg.topk = 2;
        return cfg;
    }
    for (const auto& p : kPresets) {
        if (name == p.name) {
            cfg.preset = p.name;
            cfg.layers = p.layers;
            cfg.d_model = p.d_model;
            cfg.heads = p.heads;
            cfg.ctx = p.ctx;
            cfg.d_mlp = arch == Arch::Llama ? swiglu_width(p.d_model) : p.d_mlp;
            return cfg;
        }
    }
    std::string known;
    for (const std::string& n : preset_names()) known += (known.empty() ? "" : ", ") + n;
    throw Error("unknown preset '" + name + "' (known: " + known + ")");
}

std::vector<std::string> preset_names() {
    std::vector<std::string> names;
    for (const auto& p : kPresets) names.emplace_back(p.name);
    names.emplace_back("tutorial");
    return names;
}

int default_batch_for(int d_model) {
    if (d_model >= 1024) return 2;
    if (d_model >= 512) return 4;
    if (d_model >= 256) return 8;
    return 16;
}

double training_flops_per_token(const ModelConfig& cfg) {
    const double C = cfg.d_model, L = cfg.layers;
    const double ffn_matrices = cfg.is_llama() ? 3.0 : 2.0;
    double matrix_params = 0.0;
    for (int l = 0; l < cfg.layers; ++l) {
        matrix_params += static_cast<double>(cfg.qkv_width() + cfg.q_width()) * C;
        if (cfg.is_moe_layer(l)) {
            matrix_params += C * cfg.experts + cfg.topk * ffn_matrices * C * cfg.expert_width() +
                             (cfg.shared_ffn > 0 ? 3.0 * C * cfg.shared_ffn + C : 0.0);
        } else {
            matrix_params += ffn_matrices * C * cfg.d_mlp;
        }
    }
    matrix_params += cfg.vocab * C;
    return 6.0 * matrix_params + 6.0 * L * cfg.ctx * cfg.q_width();
}

}  // namespace tinygpt
