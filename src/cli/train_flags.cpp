#include "cli/train_flags.h"

#include <sys/stat.h>

#include <algorithm>

#include "cli/common_flags.h"
#include "cli/memory_flag.h"
#include "util/error.h"

namespace tinygpt::cli {

bool TrainFlags::given(const std::string& flag) const {
    const CLI::Option* opt = cmd_->get_option_no_throw(flag);
    return opt && opt->count() > 0;
}

void TrainFlags::add_model_flags(CLI::App* cmd) {
    cmd_ = cmd;
    cmd->add_option("--arch", arch,
                    "Model family: gpt (the original TinyGPT block) or llama (RMSNorm, RoPE, "
                    "GQA, SwiGLU; Mixtral / Qwen-MoE style)")
        ->capture_default_str();
    cmd->add_option("--preset", preset,
                    "Model preset: tiny, small, huge, mega, behemoth, titan (either family), "
                    "tutorial (llama, d 768, 12 layers, 8 experts top-2)")
        ->capture_default_str();
    cmd->add_option("--layers", layers, "Override the preset's number of blocks");
    cmd->add_option("--d-model", d_model, "Override the preset's width");
    cmd->add_option("--heads", heads, "Override the preset's attention heads");
    cmd->add_option("--d-mlp", d_mlp,
                    "Override the preset's MLP width (the experts' too, unless --moe-ffn)");
    cmd->add_option("--ctx", ctx, "Override the preset's context length");
    cmd->add_option("--kv-heads", kv_heads, "llama: key/value heads (GQA; must divide --heads)");
    cmd->add_option("--rope-theta", rope_theta, "llama: RoPE base")->capture_default_str();
    cmd->add_option("--norm-eps", norm_eps, "llama: RMSNorm epsilon")->capture_default_str();
    cmd->add_flag("--qkv-bias", qkv_bias, "llama: biases on q/k/v (Qwen2)");
    cmd->add_option("--head-dim", head_dim,
                    "llama: per-head width (default d_model / heads; Qwen3 sets it apart)");
    cmd->add_option("--qk-norm", qk_norm,
                    "llama: RMSNorm on q and k before RoPE: per head (bare flag or 'head', "
                    "Qwen3) or 'full' over the whole projection (OLMoE)")
        ->expected(0, 1);
    cmd->add_flag("--tie-embeddings", tie_embeddings,
                  "llama: the output head is the token embedding (untied by default)");
    cmd->add_option("--moe-experts", experts, "Experts per block (1 = dense MLP)")
        ->capture_default_str();
    cmd->add_option("--moe-topk", topk, "Experts per token (clamped to --moe-experts)")
        ->capture_default_str();
    add_moe_layout_flags(cmd);
    cmd->add_option("--moe-aux-weight", aux_weight, "Load-balance loss weight")
        ->capture_default_str();
    cmd->add_option("--moe-z-loss", z_loss, "Router z-loss weight (ST-MoE)")->capture_default_str();
    cmd->add_option("--moe-jitter", jitter,
                    "Training: multiply the router input by U(1-E, 1+E) noise (0 = off)")
        ->capture_default_str();
    cmd->add_option("--moe-capacity-factor", capacity_factor,
                    "Training: drop (token, expert) pairs beyond ceil(C*N*K/E) per expert "
                    "(0 = dropless)")
        ->capture_default_str();
    cmd->add_option("--moe-dispatch", dispatch,
                    "sparse (grouped GEMMs on routed tokens) or dense (every expert on every "
                    "token, the original's reference path)")
        ->capture_default_str();
}

void TrainFlags::add_moe_layout_flags(CLI::App* cmd) {
    cmd_ = cmd;
    cmd->add_option("--moe-ffn", moe_ffn, "Expert width (default: the dense MLP width)");
    cmd->add_option("--moe-shared-ffn", shared_ffn,
                    "llama: width of an always-on shared expert scaled by sigmoid(Linear(x)) "
                    "(Qwen2-MoE); 0 = none")
        ->capture_default_str();
    cmd->add_option("--moe-norm-topk", norm_topk,
                    "Renormalise the top-K gates: on (Mixtral, Qwen3), off (Qwen2-MoE, OLMoE), "
                    "auto (on for K >= 2)")
        ->capture_default_str();
    cmd->add_option("--moe-every", moe_every, "Layer i is MoE when (i+1) % S == 0")
        ->capture_default_str();
    cmd->add_option("--moe-dense-first", moe_dense_first, "The first M layers stay dense")
        ->capture_default_str();
}

void TrainFlags::add_training_flags(CLI::App* cmd, bool warmup_flag_is_lr) {
    cmd->add_option("--corpus", corpus,
                    "UTF-8 text file to train on (default: the bundled "
                    "data/shakespeare.txt)");
    cmd->add_option("--steps", steps, "Optimizer steps")->capture_default_str();
    cmd->add_option("--batch", batch, "Micro-batch (default by d_model: 16/8/4/2)");
    cmd->add_option("--accum", accum, "Gradient-accumulation micro-batches per step")
        ->capture_default_str();
    cmd->add_option("--lr-schedule", schedule, "cosine or constant")->capture_default_str();
    cmd->add_option("--lr-warmup", lr_warmup,
                    "Linear LR warm-up steps (default min(500, steps/10))");
    warmup_flag_is_lr_ = warmup_flag_is_lr;
    if (warmup_flag_is_lr) cmd->add_option("--warmup", lr_warmup, "Same as --lr-warmup");
    cmd->add_option("--max-lr", max_lr, "Peak learning rate")->capture_default_str();
    cmd->add_option("--min-lr", min_lr, "Final learning rate of the cosine schedule")
        ->capture_default_str();
    cmd->add_option("--grad-clip", grad_clip, "Global gradient-norm clip (0 = off)")
        ->capture_default_str();
    cmd->add_option("--val-split", val_split,
                    "Fraction of the corpus held out for validation, in [0, 0.5)")
        ->capture_default_str();
    cmd->add_option("--seed", seed, "Seed for init and batches")
        ->check(seed_validator())
        ->capture_default_str();
    cmd->add_option("--threads", threads, "Threads for OpenMP and BLAS (0 = all cores)")
        ->capture_default_str();
    add_max_memory_flag(cmd, max_memory);
}

void TrainFlags::apply_model_flags(ModelConfig& m, std::vector<std::string>& warnings) const {
    const Arch family = parse_arch(arch);
    if (preset == "tutorial" && given("--arch") && family != Arch::Llama)
        throw Error("--preset tutorial is a Llama-family preset (use --arch llama)");
    m = preset_config(preset, family);
    const ModelConfig base = m;
    if (given("--layers")) m.layers = layers;
    if (given("--d-model")) m.d_model = d_model;
    if (given("--heads")) m.heads = heads;
    if (given("--ctx")) m.ctx = ctx;
    // A Llama preset's SwiGLU width follows a changed --d-model unless --d-mlp says otherwise.
    if (given("--d-mlp")) {
        m.d_mlp = d_mlp;
    } else if (m.is_llama() && m.d_model != base.d_model) {
        m.d_mlp = swiglu_width(m.d_model);
    }
    if (m.layers != base.layers || m.d_model != base.d_model || m.heads != base.heads ||
        m.d_mlp != base.d_mlp || m.ctx != base.ctx)
        m.preset = "custom (" + preset + " base)";
    m.kv_heads = kv_heads;
    m.rope_theta = rope_theta;
    m.norm_eps = norm_eps;
    m.qkv_bias = qkv_bias;
    if (given("--head-dim")) m.head_size = head_dim;
    m.qk_norm =
        given("--qk-norm") ? parse_qk_norm(qk_norm.empty() ? "head" : qk_norm) : QkNorm::None;
    m.tie_embeddings = tie_embeddings;
    if (given("--moe-experts")) m.experts = experts;
    if (given("--moe-topk") || given("--moe-experts")) m.topk = topk;
    if (m.experts >= 1 && m.topk > m.experts) {
        warnings.push_back("--moe-topk " + std::to_string(m.topk) + " exceeds --moe-experts " +
                           std::to_string(m.experts) + "; using top-" + std::to_string(m.experts));
        m.topk = m.experts;
    }
    m.moe_ffn = moe_ffn;
    m.shared_ffn = shared_ffn;
    m.moe_layers = m.is_moe() && (moe_every != 1 || moe_dense_first != 0)
                       ? moe_layout_rule(m.layers, moe_every, moe_dense_first)
                       : std::vector<char>{};
    m.norm_topk = parse_norm_topk(norm_topk);
    m.aux_weight = aux_weight;
    m.z_loss_weight = z_loss;
    m.jitter = jitter;
    m.capacity_factor = capacity_factor;
    m.dispatch = parse_dispatch();
    if (!m.is_moe()) {
        for (const char* flag :
             {"--moe-ffn", "--moe-shared-ffn", "--moe-every", "--moe-dense-first",
              "--moe-norm-topk", "--moe-z-loss", "--moe-jitter", "--moe-capacity-factor"})
            if (given(flag))
                warnings.push_back(std::string(flag) +
                                   " has no effect on a dense model (--moe-experts 1)");
    }
}

TrainOptions TrainFlags::build(std::vector<std::string>& warnings) const {
    TrainOptions opt;
    apply_model_flags(opt.model, warnings);
    apply_recipe(opt);
    return opt;
}

void TrainFlags::apply_recipe(TrainOptions& opt) const {
    if (threads < 0) throw Error("--threads must be >= 0 (got " + std::to_string(threads) + ")");
    opt.batch = given("--batch") ? batch : default_batch_for(opt.model.d_model);
    opt.accum = accum;
    opt.steps = steps;
    opt.schedule.kind = parse_schedule(schedule);
    opt.schedule.max_lr = max_lr;
    opt.schedule.min_lr = min_lr;
    opt.schedule.warmup = lr_warmup_given() ? lr_warmup : std::min<int64_t>(500, steps / 10);
    opt.schedule.total_steps = steps;
    opt.grad_clip = grad_clip;
    opt.val_split = val_split;
    opt.seed = seed;
    opt.validate();
}

namespace {

// Flags that shape the model: they cannot change a loaded one.
constexpr const char* kShapeFlags[] = {
    "--arch",     "--preset",         "--layers",         "--d-model",         "--heads",
    "--d-mlp",    "--kv-heads",       "--head-dim",       "--rope-theta",      "--norm-eps",
    "--qkv-bias", "--qk-norm",        "--tie-embeddings", "--moe-experts",     "--moe-topk",
    "--moe-ffn",  "--moe-shared-ffn", "--moe-every",      "--moe-dense-first", "--moe-norm-topk"};

}  // namespace

TrainOptions TrainFlags::build_initialized(const ModelConfig& loaded, const std::string& file,
                                           std::vector<std::string>& warnings) const {
    for (const char* flag : kShapeFlags)
        if (given(flag))
            throw Error(std::string(flag) +
                        " cannot be used with --init-from: the model's shape comes from '" + file +
                        "' (" + loaded.describe() + ")");
    TrainOptions opt;
    opt.model = loaded;
    if (given("--ctx")) {
        if (!loaded.is_llama())
            throw Error(
                "--ctx cannot change a GPT-family model's context: its learned position "
                "table has " +
                std::to_string(loaded.ctx) + " rows");
        if (ctx < 1 || ctx > loaded.ctx)
            throw Error("--ctx must be in [1, " + std::to_string(loaded.ctx) + "] for '" + file +
                        "' (got " + std::to_string(ctx) + ")");
        opt.model.ctx = ctx;
    }
    opt.model.aux_weight = aux_weight;
    opt.model.z_loss_weight = z_loss;
    opt.model.jitter = jitter;
    opt.model.capacity_factor = capacity_factor;
    opt.model.dispatch = parse_dispatch();
    if (!opt.model.is_moe())
        for (const char* flag : {"--moe-z-loss", "--moe-jitter", "--moe-capacity-factor"})
            if (given(flag))
                warnings.push_back(std::string(flag) + " has no effect on a dense model");
    opt.model.validate();
    apply_recipe(opt);
    return opt;
}

TrainOptions TrainFlags::build_resumed(const ModelConfig& saved_model, const TrainingState& saved,
                                       const std::string& file,
                                       std::vector<std::string>& warnings) const {
    std::vector<const char*> refused(std::begin(kShapeFlags), std::end(kShapeFlags));
    refused.push_back("--ctx");
    for (const char* flag : refused) {
        if (given(flag))
            throw Error(std::string(flag) +
                        " cannot be used with --resume: the model's shape comes from '" + file +
                        "' (" + saved_model.describe() + ")");
    }
    if (threads < 0) throw Error("--threads must be >= 0 (got " + std::to_string(threads) + ")");
    TrainOptions opt;
    opt.model = saved_model;
    opt.model.dispatch = parse_dispatch();
    auto override_note = [&](const char* flag) {
        warnings.push_back(std::string(flag) + " overrides the value saved in '" + file + "'");
    };
    // The training-time MoE options may change between runs (with a note).
    const std::pair<const char*, float> moe_overrides[] = {
        {"--moe-aux-weight", aux_weight},
        {"--moe-z-loss", z_loss},
        {"--moe-jitter", jitter},
        {"--moe-capacity-factor", capacity_factor}};
    for (const auto& [flag, value] : moe_overrides) {
        if (!given(flag)) continue;
        const std::string f = flag;
        float& field = f == "--moe-aux-weight" ? opt.model.aux_weight
                       : f == "--moe-z-loss"   ? opt.model.z_loss_weight
                       : f == "--moe-jitter"   ? opt.model.jitter
                                               : opt.model.capacity_factor;
        field = value;
        override_note(flag);
    }
    opt.batch = saved.batch > 0 ? saved.batch : default_batch_for(opt.model.d_model);
    if (given("--batch")) {
        opt.batch = batch;
        override_note("--batch");
    }
    opt.accum = saved.accum;
    if (given("--accum")) {
        opt.accum = accum;
        override_note("--accum");
    }
    opt.schedule = saved.schedule;
    if (saved.total_steps == 0) {  // a file without a training state: the CLI's recipe
        opt.schedule.kind = parse_schedule(schedule);
        opt.schedule.max_lr = max_lr;
        opt.schedule.min_lr = min_lr;
        opt.schedule.warmup = lr_warmup_given() ? lr_warmup : 0;
        opt.grad_clip = grad_clip;
        opt.seed = seed;
        opt.val_split = val_split;
    } else {
        if (given("--lr-schedule")) {
            opt.schedule.kind = parse_schedule(schedule);
            override_note("--lr-schedule");
        }
        if (given("--max-lr")) {
            opt.schedule.max_lr = max_lr;
            override_note("--max-lr");
        }
        if (given("--min-lr")) {
            opt.schedule.min_lr = min_lr;
            override_note("--min-lr");
        }
        if (lr_warmup_given()) {
            opt.schedule.warmup = lr_warmup;
            override_note("--lr-warmup");
        }
        opt.grad_clip = given("--grad-clip") ? grad_clip : saved.grad_clip;
        opt.seed = given("--seed") ? seed : saved.seed;
        opt.val_split = given("--val-split") ? val_split : saved.val_split;
        opt.adamw = saved.adamw;
    }
    opt.steps = given("--steps") ? steps : (saved.total_steps > 0 ? saved.total_steps : steps);
    if (opt.steps <= saved.step)
        throw Error("'" + file + "' is already at step " + std::to_string(saved.step) +
                    "; --steps is the absolute target and must exceed it (got " +
                    std::to_string(opt.steps) + ")");
    if (saved.total_steps > 0 && opt.steps != saved.total_steps &&
        opt.schedule.kind == LrSchedule::Cosine)
        warnings.push_back("--steps " + std::to_string(opt.steps) +
                           " differs from the saved run's " + std::to_string(saved.total_steps) +
                           ": the cosine schedule is stretched to the new end");
    opt.schedule.total_steps = opt.steps;
    opt.validate();
    return opt;
}

DispatchMode TrainFlags::parse_dispatch() const {
    if (dispatch == "sparse") return DispatchMode::Sparse;
    if (dispatch == "dense") return DispatchMode::Dense;
    throw Error("unknown --moe-dispatch '" + dispatch + "' (known: sparse, dense)");
}

bool TrainFlags::lr_warmup_given() const {
    return given("--lr-warmup") || (warmup_flag_is_lr_ && given("--warmup"));
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
