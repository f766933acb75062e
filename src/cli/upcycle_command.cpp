// `tinygpt upcycle IN --experts E [--topk K] --out OUT`: sparse upcycling (model/upcycle.h).
// Each chosen layer's dense MLP becomes E experts that start as copies of it, with a new router;
// everything else, the tokenizer included, is carried over. IN is any model open_model reads
// (typed weights are widened: OUT is an f32 .tinygpt v3 file for `train --init-from`). The
// output says whether the new model computes exactly the dense one's function at step 0.
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>

#include "cli/commands.h"
#include "cli/common_flags.h"
#include "cli/memory_flag.h"
#include "cli/train_flags.h"
#include "io/model_file.h"
#include "load/model_source.h"
#include "model/memory_estimate.h"
#include "model/upcycle.h"
#include "util/error.h"
#include "util/timer.h"

namespace tinygpt::cli {

namespace {

// "all 4 layers", "layers 1, 3 of 4"
std::string moe_layer_list(const ModelConfig& cfg) {
    if (cfg.moe_layer_count() == cfg.layers) return "all " + std::to_string(cfg.layers) + " layers";
    std::string list;
    for (int l = 0; l < cfg.layers; ++l)
        if (cfg.is_moe_layer(l)) list += (list.empty() ? "" : ", ") + std::to_string(l);
    return "layers " + list + " of " + std::to_string(cfg.layers);
}

struct UpcycleCommand {
    std::string in, out;
    int experts = 0, topk = 2;
    TrainFlags layout_flags;  // --moe-ffn, --moe-shared-ffn, --moe-norm-topk, --moe-every, ...
    std::string router_init = "random";
    float expert_noise = 0.0f;
    uint64_t seed = 1337;
    std::string max_memory;

    UpcycleOptions options() const {
        UpcycleOptions o;
        o.experts = experts;
        o.topk = topk;
        o.moe_ffn = layout_flags.moe_ffn;
        o.shared_ffn = layout_flags.shared_ffn;
        o.moe_every = layout_flags.moe_every;
        o.moe_dense_first = layout_flags.moe_dense_first;
        o.norm_topk = parse_norm_topk(layout_flags.norm_topk);
        o.router_init = parse_router_init(router_init);
        o.expert_noise = expert_noise;
        o.seed = seed;
        return o;
    }

    void run() const {
        check_writable_target(out);
        std::error_code ec;
        if (in == out || std::filesystem::equivalent(in, out, ec))
            throw Error("upcycle writes a new file: --out must differ from IN ('" + in + "')");
        const UpcycleOptions o = options();
        Timer t;
        const OpenedModel model = open_model(in, ReadOptions{/*optimizer=*/false});
        // The config first: its refusals (an MoE model, a bad top-K, …) come before any work.
        const ModelConfig moe = upcycled_config(model.config, o);
        MemoryEstimate estimate;
        estimate.add("weights", parameter_buffer_bytes(moe));
        check_memory(estimate, memory_budget(max_memory),
                     "try fewer --experts, or a larger --moe-every");
        const UpcycledModel result = upcycle(model.weights, o);
        SaveOptions save;
        save.include_optimizer = false;
        save.include_training_state = false;
        set_tokenizer(save, model.tokenizer);
        save_model_file(out, result.config, result.weights.data(), nullptr, nullptr,
                        TrainingState{}, save);

        std::printf("tinygpt upcycle\n");
        std::printf("  from      %s (%s): %s\n", in.c_str(), model.format.c_str(),
                    model.config.describe().c_str());
        std::printf("  model     %s\n", moe.describe().c_str());
        std::printf(
            "  experts   %s: %d copies of each MLP, a new router (%s)", moe_layer_list(moe).c_str(),
            moe.experts,
            o.router_init == RouterInit::Zero ? "zeros" : "random, as train initialises one");
        if (o.expert_noise > 0) std::printf(", expert noise %g", o.expert_noise);
        std::printf("\n  params    %s total · %s active per token (dense: %s)\n",
                    with_commas(moe.total_params()).c_str(),
                    with_commas(moe.active_params()).c_str(),
                    with_commas(model.config.total_params()).c_str());
        std::printf("  tokenizer %s\n", model.tokenizer.describe().c_str());
        const UpcycleExactness exactness = upcycle_exactness(moe, o);
        for (size_t i = 0; i < exactness.lines.size(); ++i)
            std::printf("%s%s\n", i == 0 ? "" : "note: ", exactness.lines[i].c_str());
        std::printf(
            "wrote %s (format v3, f32, no optimizer state) in %.0f ms; train it with "
            "`tinygpt train --init-from %s`\n",
            out.c_str(), t.millis(), out.c_str());
    }
};

}  // namespace

void register_upcycle(CLI::App& app) {
    auto state = std::make_shared<UpcycleCommand>();
    CLI::App* cmd = app.add_subcommand(
        "upcycle",
        "Sparse upcycling: turn a dense model into a mixture of experts whose experts start as "
        "copies of each layer's MLP (docs/UPCYCLE.md says when it computes the same function)");
    cmd->add_option("in", state->in, kModelHelp)->required();
    cmd->add_option("--out", state->out, "The MoE model to write (.tinygpt v3, f32)")
        ->required()
        ->check(non_empty_path());
    cmd->add_option("--experts", state->experts, "Experts per MoE layer (copies of its MLP), >= 2")
        ->required();
    cmd->add_option("--topk", state->topk, "Experts per token, at most --experts")
        ->capture_default_str();
    state->layout_flags.add_moe_layout_flags(cmd);
    cmd->add_option("--router-init", state->router_init,
                    "The new router: random (small, as train initialises one) or zero (uniform "
                    "gates; top-K then takes experts 0..K-1)")
        ->capture_default_str();
    cmd->add_option("--expert-noise", state->expert_noise,
                    "Multiply every expert weight by (1 + S*N(0,1)) to break the copies' "
                    "symmetry (0 = exact copies)")
        ->capture_default_str();
    cmd->add_option("--seed", state->seed,
                    "Seed of the random router, the shared expert and the noise")
        ->check(seed_validator())
        ->capture_default_str();
    add_max_memory_flag(cmd, state->max_memory);
    cmd->callback([state] { state->run(); });
}

}  // namespace tinygpt::cli
