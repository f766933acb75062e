// `tinygpt inspect FILE`: what a .tinygpt file holds — format, step, config, MoE routing,
// parameter counts, memory sizes, the tensor table, recent losses, expert load, optimizer state.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/train_flags.h"
#include "io/model_file.h"
#include "load/model_source.h"
#include "model/params.h"
#include "train/distillation.h"
#include "util/format.h"

namespace tinygpt::cli {

namespace {

int64_t elements(const std::vector<int64_t>& shape) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
}

std::string routing_rule(const ModelConfig& c) {
    if (!c.is_moe()) return "dense MLP";
    std::string rule = "softmax over all experts → top-" + std::to_string(c.topk);
    if (c.renormalize_topk())
        rule += c.topk == 1 ? " → gate 1 (renormalised; only the aux loss trains the router)"
                            : " → gates renormalised over the chosen (Mixtral, Qwen3)";
    else
        rule += c.topk == 1 ? ", gate = its probability (Switch)"
                            : ", gates = their probabilities (Qwen2-MoE, OLMoE)";
    return rule;
}

// "1, 3, 5" (the MoE or the dense layers).
std::string layer_list(const ModelConfig& c, bool moe) {
    std::string out;
    for (int l = 0; l < c.layers; ++l)
        if (c.is_moe_layer(l) == moe) out += (out.empty() ? "" : ", ") + std::to_string(l);
    return out.empty() ? "none" : out;
}

// The block's parts, one line.
std::string block_summary(const ModelConfig& c) {
    char buf[256];
    if (!c.is_llama()) {
        std::snprintf(buf, sizeof buf,
                      "vocab %d · learned positions · LayerNorm · GELU MLP · tied head", c.vocab);
        return buf;
    }
    std::snprintf(buf, sizeof buf,
                  "vocab %d · RMSNorm eps %g · RoPE θ %g · %d q / %d kv heads × %d · SwiGLU%s%s%s "
                  "· %s head",
                  c.vocab, c.norm_eps, c.rope_theta, c.heads, c.kv_head_count(), c.head_dim(),
                  c.qkv_bias ? " · q/k/v bias" : "", c.o_bias ? " · o bias" : "",
                  c.qk_norm == QkNorm::PerHead ? " · q/k norm"
                  : c.qk_norm == QkNorm::Full  ? " · q/k norm (full)"
                                               : "",
                  c.tie_embeddings ? "tied" : "untied");
    return buf;
}

nlohmann::json config_json(const ModelConfig& c) {
    nlohmann::json j = {{"arch", arch_name(c.arch)}, {"preset", c.preset},
                        {"vocab", c.vocab},          {"ctx", c.ctx},
                        {"layers", c.layers},        {"d_model", c.d_model},
                        {"heads", c.heads},          {"d_mlp", c.d_mlp},
                        {"experts", c.experts},      {"topk", c.topk},
                        {"aux_weight", c.aux_weight}};
    if (c.is_llama()) {
        j["kv_heads"] = c.kv_head_count();
        j["norm_eps"] = c.norm_eps;
        j["rope_theta"] = c.rope_theta;
        j["qkv_bias"] = c.qkv_bias;
        j["qk_norm"] = qk_norm_name(c.qk_norm);
        j["head_dim"] = c.head_dim();
        j["o_bias"] = c.o_bias;
        j["tie_embeddings"] = c.tie_embeddings;
    }
    if (c.is_moe()) {
        nlohmann::json kinds = nlohmann::json::array();
        for (int l = 0; l < c.layers; ++l) kinds.push_back(c.is_moe_layer(l) ? "moe" : "dense");
        j["moe"] = {{"ffn", c.expert_width()},
                    {"shared_ffn", c.shared_ffn},
                    {"norm_topk", norm_topk_name(c.norm_topk)},
                    {"z_loss_weight", c.z_loss_weight},
                    {"jitter", c.jitter},
                    {"capacity_factor", c.capacity_factor},
                    {"layers", kinds}};
    }
    return j;
}

// max load / ideal load (1/E): 1.0 is perfect balance, E is total collapse.
float imbalance(const std::vector<float>& load) {
    float peak = 0.0f;
    for (float f : load) peak = std::max(peak, f);
    return peak * static_cast<float>(load.size());
}

struct InspectCommand {
    std::string path;
    bool json = false;

    void run() const {
        const OpenedModel model = open_model(path, {}, NonFinite::Report);
        const ModelConfig& c = model.config;
        const TrainingState st = model.file ? model.file->training_state() : TrainingState{};
        // The tensors as stored: the file's table, or (GGUF files, HF directories) as loaded.
        std::vector<StoredTensor> stored;
        if (model.file) {
            stored = model.file->tensors();
        } else {
            const auto& entries = model.weights.layout().entries();
            for (size_t i = 0; i < entries.size(); ++i) {
                const WeightDtype d = model.weights.view(i).dtype;
                stored.push_back(StoredTensor{entries[i].name, entries[i].shape, d, 0,
                                              dtype_tensor_bytes(d, entries[i].shape)});
            }
        }
        uint64_t stored_bytes = 0;
        for (const StoredTensor& t : stored) stored_bytes += t.bytes;
        const std::string stored_types =
            model.file ? model.file->stored_types() : model.weights.type_summary();
        const bool optimizer = model.file && model.file->has_optimizer_state();
        const bool training = model.file && model.file->has_training_state();
        const uint64_t file_bytes = model.file ? model.file->file_bytes() : 0;
        const double mib = 1024.0 * 1024.0;
        const auto& losses = st.loss_history;
        const ExpertLoadRecord* load =
            st.expert_load_history.empty() ? nullptr : &st.expert_load_history.back();
        if (json) {
            nlohmann::json out;
            out["file"] = path;
            out["format"] = model.format;
            if (model.file) out["format_version"] = model.file->version();
            if (model.file) out["file_bytes"] = file_bytes;
            out["tokenizer"] = model.tokenizer.describe();
            out["step"] = st.step;
            out["config"] = config_json(c);
            out["routing"] = routing_rule(c);
            out["params_total"] = c.total_params();
            out["params_active"] = c.active_params();
            out["bytes_f32"] = 4 * c.total_params();
            out["bytes_bf16"] = 2 * c.total_params();
            out["weight_dtype"] =
                dtype_name(model.file ? model.file->weight_dtype() : model.weights.main_dtype());
            out["weight_types"] = stored_types;
            out["weight_bytes"] = stored_bytes;
            nlohmann::json bad = nlohmann::json::array();
            for (const NonFiniteTensor& t : model.non_finite)
                bad.push_back({{"name", t.name}, {"count", t.count}, {"first", t.first}});
            out["non_finite"] = bad;
            out["optimizer_state"] = optimizer;
            out["training_state"] = training;
            if (training) out["train_seconds"] = st.train_seconds;
            if (st.distillation)
                out["distillation"] = {{"teacher", st.distillation->teacher},
                                       {"alpha", st.distillation->alpha},
                                       {"temperature", st.distillation->temperature},
                                       {"teacher_topk", st.distillation->teacher_topk}};
            nlohmann::json tensors = nlohmann::json::array();
            for (const StoredTensor& t : stored)
                tensors.push_back({{"name", t.name},
                                   {"shape", t.shape},
                                   {"dtype", dtype_name(t.dtype)},
                                   {"elements", elements(t.shape)},
                                   {"bytes", t.bytes}});
            out["tensors"] = tensors;
            nlohmann::json recent = nlohmann::json::array();
            for (size_t i = losses.size() > 5 ? losses.size() - 5 : 0; i < losses.size(); ++i) {
                nlohmann::json r = {
                    {"step", losses[i].step}, {"loss", losses[i].loss}, {"aux", losses[i].aux}};
                if (!std::isnan(losses[i].val_loss)) r["val_loss"] = losses[i].val_loss;
                recent.push_back(r);
            }
            out["recent_losses"] = recent;
            if (load) {
                nlohmann::json imbalances = nlohmann::json::array();
                for (const auto& l : load->load)
                    imbalances.push_back(l.empty() ? nlohmann::json(nullptr)
                                                   : nlohmann::json(imbalance(l)));
                out["expert_load"] = {{"step", load->step},
                                      {"per_block", load->load},
                                      {"max_over_ideal", imbalances}};
            }
            std::printf("%s\n", out.dump().c_str());
            return;
        }
        std::printf("File: %s\n%s\n", path.c_str(), std::string(60, '-').c_str());
        if (model.file)
            std::printf("format     v%d · %s bytes · weights %s\n", model.file->version(),
                        with_commas(static_cast<int64_t>(file_bytes)).c_str(),
                        stored_types.c_str());
        else
            std::printf("format     %s\n", model.format.c_str());
        std::printf("tokenizer  %s\n", model.tokenizer.describe().c_str());
        std::printf("step       %lld\n", static_cast<long long>(st.step));
        std::printf("model      %s\n", c.describe().c_str());
        std::printf("           %s\n", block_summary(c).c_str());
        if (c.is_moe()) {
            std::printf("MoE        %d experts of width %d · top-%d · aux weight %g", c.experts,
                        c.expert_width(), c.topk, c.aux_weight);
            if (c.shared_ffn > 0) std::printf(" · shared expert %d (sigmoid-gated)", c.shared_ffn);
            std::printf("\n           MoE layers: %s · dense layers: %s\n",
                        layer_list(c, true).c_str(), layer_list(c, false).c_str());
            std::printf("           %s\n", routing_rule(c).c_str());
            std::printf("           z-loss %g · jitter %g · ", c.z_loss_weight, c.jitter);
            if (c.capacity_factor > 0)
                std::printf("capacity factor %g (training)\n", c.capacity_factor);
            else
                std::printf("dropless\n");
        }
        std::printf("params     %s total · %s active per token\n",
                    with_commas(c.total_params()).c_str(), with_commas(c.active_params()).c_str());
        std::printf("memory     %.1f MiB at f32 · %.1f MiB at bf16 · %.1f MiB as stored (%s)\n",
                    4 * c.total_params() / mib, 2 * c.total_params() / mib, stored_bytes / mib,
                    stored_types.c_str());
        if (model.non_finite.empty()) {
            std::printf("weights    all finite\n");
        } else {
            std::printf(
                "weights    NaN/inf in %zu tensor%s (commands that compute refuse this "
                "model):\n",
                model.non_finite.size(), model.non_finite.size() == 1 ? "" : "s");
            for (const NonFiniteTensor& t : model.non_finite)
                std::printf("  %-40s %s non-finite (first at %zu)\n", t.name.c_str(),
                            with_commas(static_cast<int64_t>(t.count)).c_str(), t.first);
        }
        std::printf("optimizer  %s\n",
                    optimizer ? (training ? "AdamW moments + training state (exact resume)"
                                          : "AdamW moments (no data-stream state)")
                              : "none (inference file)");
        if (training)
            std::printf(
                "training   %lld of %lld steps · batch %d × accum %d · lr %g → %g (%s, warmup "
                "%lld) · seed %llu\n",
                static_cast<long long>(st.step), static_cast<long long>(st.total_steps), st.batch,
                st.accum, st.schedule.max_lr, st.schedule.min_lr,
                schedule_name(st.schedule.kind).c_str(), static_cast<long long>(st.schedule.warmup),
                static_cast<unsigned long long>(st.seed));
        if (training && st.train_seconds > 0)
            std::printf("           %.1f s of training steps\n", st.train_seconds);
        if (const auto& d = st.distillation)
            std::printf("distilled  from %s · %s\n", d->teacher.c_str(),
                        describe_recipe(*d).c_str());
        if (!losses.empty()) {
            std::printf("losses    ");
            for (size_t i = losses.size() > 5 ? losses.size() - 5 : 0; i < losses.size(); ++i) {
                std::printf(" %lld: %.4f", static_cast<long long>(losses[i].step), losses[i].loss);
                if (!std::isnan(losses[i].val_loss)) std::printf(" (val %.4f)", losses[i].val_loss);
            }
            std::printf("\n");
        }
        if (load) {
            std::printf(
                "expert load at step %lld (fraction of routed pairs; max/ideal 1.0 = balanced):\n",
                static_cast<long long>(load->step));
            for (size_t l = 0; l < load->load.size(); ++l) {
                if (load->load[l].empty()) continue;  // a dense block
                std::printf("  block %zu:", l);
                for (float f : load->load[l]) std::printf(" %.2f", f);
                std::printf("   max/ideal %.2f\n", imbalance(load->load[l]));
            }
        }
        std::printf("Tensors (%zu, %s bytes as stored):\n", stored.size(),
                    with_commas(static_cast<int64_t>(stored_bytes)).c_str());
        for (const StoredTensor& t : stored)
            std::printf("  %-40s %-14s %-5s %12s %14s B\n", t.name.c_str(),
                        shape_string(t.shape).c_str(), dtype_name(t.dtype),
                        with_commas(elements(t.shape)).c_str(),
                        with_commas(static_cast<int64_t>(t.bytes)).c_str());
    }
};

}  // namespace

void register_inspect(CLI::App& app) {
    auto state = std::make_shared<InspectCommand>();
    CLI::App* cmd = app.add_subcommand("inspect", "Show what a model file or directory holds");
    cmd->add_option("file", state->path, kModelHelp)->required();
    cmd->add_flag("--json", state->json, "Print one JSON object");
    cmd->callback([state] { state->run(); });
}

}  // namespace tinygpt::cli
