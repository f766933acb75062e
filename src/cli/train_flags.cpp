#include "cli/train_flags.h"

#include <sys/stat.h>

#include <algorithm>

#include "util/error.h"

namespace tinygpt::cli {

void TrainFlags::add_model_flags(CLI::App* cmd) {
    cmd->add_option("--preset", preset, "Model preset: tiny, small, huge, mega, behemoth, titan")
        ->capture_default_str();
    opt_layers_ = cmd->add_option("--layers", layers, "Override the preset's number of blocks");
    opt_d_model_ = cmd->add_option("--d-model", d_model, "Override the preset's width");
    opt_heads_ = cmd->add_option("--heads", heads, "Override the preset's attention heads");
    opt_d_mlp_ = cmd->add_option("--d-mlp", d_mlp, "Override the preset's MLP / expert width");
    opt_ctx_ = cmd->add_option("--ctx", ctx, "Override the preset's context length");
    cmd->add_option("--moe-experts", experts, "Experts per block (1 = dense MLP)")->capture_default_str();
    cmd->add_option("--moe-topk", topk, "Experts per token (clamped to --moe-experts)")->capture_default_str();
    cmd->add_option("--moe-aux-weight", aux_weight, "Load-balance loss weight")->capture_default_str();
    cmd->add_option("--moe-dispatch", dispatch,
                    "sparse (grouped GEMMs on routed tokens) or dense (every expert on every "
                    "token, the original's reference path)")
        ->capture_default_str();
}

void TrainFlags::add_training_flags(CLI::App* cmd, bool warmup_flag_is_lr) {
    cmd->add_option("--corpus", corpus, "UTF-8 text file to train on (default: the bundled "
                                        "data/shakespeare.txt)");
    cmd->add_option("--steps", steps, "Optimizer steps")->capture_default_str();
    opt_batch_ = cmd->add_option("--batch", batch, "Micro-batch (default by d_model: 16/8/4/2)");
    cmd->add_option("--accum", accum, "Gradient-accumulation micro-batches per step")->capture_default_str();
    cmd->add_option("--lr-schedule", schedule, "cosine or constant")->capture_default_str();
    opt_lr_warmup_ = cmd->add_option("--lr-warmup", lr_warmup,
                                     "Linear LR warm-up steps (default min(500, steps/10))");
    if (warmup_flag_is_lr)
        opt_lr_warmup_alias_ = cmd->add_option("--warmup", lr_warmup, "Same as --lr-warmup");
    cmd->add_option("--max-lr", max_lr, "Peak learning rate")->capture_default_str();
    cmd->add_option("--min-lr", min_lr, "Final learning rate of the cosine schedule")->capture_default_str();
    cmd->add_option("--grad-clip", grad_clip, "Global gradient-norm clip (0 = off)")->capture_default_str();
    cmd->add_option("--val-split", val_split, "Fraction of the corpus held out for validation, in [0, 0.5)")
        ->capture_default_str();
    cmd->add_option("--seed", seed, "Seed for init and batches")->check(CLI::NonNegativeNumber)->capture_default_str();
    cmd->add_option("--threads", threads, "Threads for OpenMP and BLAS (0 = all cores)")->capture_default_str();
}

TrainOptions TrainFlags::build(std::vector<std::string>& warnings) const {
    TrainOptions opt;
    ModelConfig& m = opt.model;
    m = preset_config(preset);
    if (opt_layers_->count()) m.layers = layers;
    if (opt_d_model_->count()) m.d_model = d_model;
    if (opt_heads_->count()) m.heads = heads;
    if (opt_d_mlp_->count()) m.d_mlp = d_mlp;
    if (opt_ctx_->count()) m.ctx = ctx;
    m.experts = experts;
    m.topk = topk;
    if (experts >= 1 && topk > experts) {
        warnings.push_back("--moe-topk " + std::to_string(topk) + " exceeds --moe-experts " +
                           std::to_string(experts) + "; using top-" + std::to_string(experts));
        m.topk = experts;
    }
    m.aux_weight = aux_weight;
    if (dispatch == "sparse") m.dispatch = DispatchMode::Sparse;
    else if (dispatch == "dense") m.dispatch = DispatchMode::Dense;
    else throw Error("unknown --moe-dispatch '" + dispatch + "' (known: sparse, dense)");
    if (threads < 0) throw Error("--threads must be >= 0 (got " + std::to_string(threads) + ")");

    opt.batch = opt_batch_->count() ? batch : default_batch_for(m.d_model);
    opt.accum = accum;
    opt.steps = steps;
    opt.schedule.kind = parse_schedule(schedule);
    opt.schedule.max_lr = max_lr;
    opt.schedule.min_lr = min_lr;
    const bool warmup_given = opt_lr_warmup_->count() || (opt_lr_warmup_alias_ && opt_lr_warmup_alias_->count());
    opt.schedule.warmup = warmup_given ? lr_warmup : std::min<int64_t>(500, steps / 10);
    opt.schedule.total_steps = steps;
    opt.grad_clip = grad_clip;
    opt.val_split = val_split;
    opt.seed = seed;
    opt.validate();
    return opt;
}

std::string TrainFlags::corpus_path() const {
    if (!corpus.empty()) return corpus;
    // The bundled corpus: relative to the working directory when run from the checkout, else
    // where the source tree was at build time.
    struct stat st {};
    if (stat("data/shakespeare.txt", &st) == 0) return "data/shakespeare.txt";
    return TINYGPT_SOURCE_DIR "/data/shakespeare.txt";
}

std::string with_commas(int64_t value) {
    std::string digits = std::to_string(value < 0 ? -value : value), out;
    for (size_t i = 0; i < digits.size(); ++i) {
        if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
        out += digits[i];
    }
    return value < 0 ? "-" + out : out;
}

}  // namespace tinygpt::cli
