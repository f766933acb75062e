// `tinygpt inspect FILE`: what a .tinygpt file holds — format, step, config, MoE routing,
// parameter counts, memory sizes, the tensor table, recent losses, expert load, optimizer state.
#include <cmath>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/train_flags.h"
#include "io/model_file.h"

namespace tinygpt::cli {

namespace {

std::string shape_string(const std::vector<int64_t>& shape) {
    std::string s = "[";
    for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
    return s + "]";
}

int64_t elements(const std::vector<int64_t>& shape) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
}

std::string routing_rule(const ModelConfig& c) {
    if (!c.is_moe()) return "dense MLP";
    return c.topk == 1 ? "softmax over all experts → top-1, gate = its probability (Switch)"
                       : "softmax over all experts → top-" + std::to_string(c.topk) +
                             " → gates renormalised over the chosen (Mixtral)";
}

struct InspectCommand {
    std::string path;
    bool json = false;

    void run() const {
        const ModelFile file = ModelFile::read(path);
        const ModelConfig& c = file.config();
        const TrainingState& st = file.training_state();
        const double mib = 1024.0 * 1024.0;
        const auto& losses = st.loss_history;
        const ExpertLoadRecord* load =
            st.expert_load_history.empty() ? nullptr : &st.expert_load_history.back();
        if (json) {
            nlohmann::json out;
            out["file"] = path;
            out["format_version"] = file.version();
            out["file_bytes"] = file.file_bytes();
            out["step"] = st.step;
            out["config"] = {
                {"arch", "gpt"},    {"preset", c.preset},        {"vocab", c.vocab},
                {"ctx", c.ctx},     {"layers", c.layers},        {"d_model", c.d_model},
                {"heads", c.heads}, {"d_mlp", c.d_mlp},          {"experts", c.experts},
                {"topk", c.topk},   {"aux_weight", c.aux_weight}};
            out["routing"] = routing_rule(c);
            out["params_total"] = c.total_params();
            out["params_active"] = c.active_params();
            out["bytes_f32"] = 4 * c.total_params();
            out["bytes_bf16"] = 2 * c.total_params();
            out["weight_dtype"] = dtype_name(file.weight_dtype());
            out["optimizer_state"] = file.has_optimizer_state();
            out["training_state"] = file.has_training_state();
            nlohmann::json tensors = nlohmann::json::array();
            for (const StoredTensor& t : file.tensors())
                tensors.push_back({{"name", t.name},
                                   {"shape", t.shape},
                                   {"dtype", dtype_name(t.dtype)},
                                   {"elements", elements(t.shape)}});
            out["tensors"] = tensors;
            nlohmann::json recent = nlohmann::json::array();
            for (size_t i = losses.size() > 5 ? losses.size() - 5 : 0; i < losses.size(); ++i) {
                nlohmann::json r = {
                    {"step", losses[i].step}, {"loss", losses[i].loss}, {"aux", losses[i].aux}};
                if (!std::isnan(losses[i].val_loss)) r["val_loss"] = losses[i].val_loss;
                recent.push_back(r);
            }
            out["recent_losses"] = recent;
            if (load) out["expert_load"] = {{"step", load->step}, {"per_block", load->load}};
            std::printf("%s\n", out.dump().c_str());
            return;
        }
        std::printf("File: %s\n%s\n", path.c_str(), std::string(60, '-').c_str());
        std::printf("format     v%d · %s bytes · weights %s\n", file.version(),
                    with_commas(static_cast<int64_t>(file.file_bytes())).c_str(),
                    dtype_name(file.weight_dtype()));
        std::printf("step       %lld\n", static_cast<long long>(st.step));
        std::printf("model      GPT family · %s\n", c.describe().c_str());
        std::printf("           vocab %d (bytes) · tied embeddings · LayerNorm · GELU MLP\n",
                    c.vocab);
        if (c.is_moe())
            std::printf("MoE        %d experts · top-%d · aux weight %g\n           %s\n",
                        c.experts, c.topk, c.aux_weight, routing_rule(c).c_str());
        std::printf("params     %s total · %s active per token\n",
                    with_commas(c.total_params()).c_str(), with_commas(c.active_params()).c_str());
        std::printf("memory     %.1f MiB at f32 · %.1f MiB at bf16\n", 4 * c.total_params() / mib,
                    2 * c.total_params() / mib);
        std::printf("optimizer  %s\n", file.has_optimizer_state()
                                           ? (file.has_training_state()
                                                  ? "AdamW moments + training state (exact resume)"
                                                  : "AdamW moments (no data-stream state)")
                                           : "none (inference file)");
        if (file.has_training_state())
            std::printf(
                "training   %lld of %lld steps · batch %d × accum %d · lr %g → %g (%s, warmup "
                "%lld) · seed %llu\n",
                static_cast<long long>(st.step), static_cast<long long>(st.total_steps), st.batch,
                st.accum, st.schedule.max_lr, st.schedule.min_lr,
                schedule_name(st.schedule.kind).c_str(), static_cast<long long>(st.schedule.warmup),
                static_cast<unsigned long long>(st.seed));
        if (!losses.empty()) {
            std::printf("losses    ");
            for (size_t i = losses.size() > 5 ? losses.size() - 5 : 0; i < losses.size(); ++i) {
                std::printf(" %lld: %.4f", static_cast<long long>(losses[i].step), losses[i].loss);
                if (!std::isnan(losses[i].val_loss)) std::printf(" (val %.4f)", losses[i].val_loss);
            }
            std::printf("\n");
        }
        if (load) {
            std::printf("expert load at step %lld (fraction of routed pairs):\n",
                        static_cast<long long>(load->step));
            for (size_t l = 0; l < load->load.size(); ++l) {
                std::printf("  block %zu:", l);
                for (float f : load->load[l]) std::printf(" %.2f", f);
                std::printf("\n");
            }
        }
        std::printf("Tensors (%zu):\n", file.tensors().size());
        for (const StoredTensor& t : file.tensors())
            std::printf("  %-40s %-14s %-5s %12s\n", t.name.c_str(), shape_string(t.shape).c_str(),
                        dtype_name(t.dtype), with_commas(elements(t.shape)).c_str());
    }
};

}  // namespace

void register_inspect(CLI::App& app) {
    auto state = std::make_shared<InspectCommand>();
    CLI::App* cmd = app.add_subcommand("inspect", "Show what a .tinygpt file holds");
    cmd->add_option("file", state->path, "Model file (.tinygpt v1, v2 or v3)")->required();
    cmd->add_flag("--json", state->json, "Print one JSON object");
    cmd->callback([state] { state->run(); });
}

}  // namespace tinygpt::cli
