// `tinygpt train`: train a GPT / MoE model on a text corpus, with a banner, live progress,
// validation, inline greedy samples and an optional JSON-lines log.
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>

#include "cli/commands.h"
#include "cli/common_flags.h"
#include "cli/exit_code.h"
#include "cli/memory_flag.h"
#include "cli/run_saves.h"
#include "cli/train_flags.h"
#include "infer/generate.h"
#include "infer/sample.h"
#include "io/atomic_write.h"
#include "io/model_file.h"
#include "load/model_source.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"
#include "util/sysinfo.h"
#include "util/timer.h"

namespace tinygpt::cli {

namespace {

struct TrainCommand {
    TrainFlags flags;
    std::string out_path;
    int64_t save_every = 0;
    std::string format = "v3";
    std::string resume_path;
    std::string init_from;
    std::string tokenizer_path;
    int64_t stop_at = 0;
    int val_every = 200;
    int sample_every = 100;
    int sample_tokens = 60;
    std::string sample_prompt = "ROMEO:";
    std::string log_path;
    int log_every = 50;

    void run() const;
};

bool live_progress() {
    return isatty(fileno(stdout)) != 0;
}

std::string format_duration(double seconds) {
    char buf[32];
    if (seconds < 60)
        std::snprintf(buf, sizeof buf, "%.0fs", seconds);
    else if (seconds < 3600)
        std::snprintf(buf, sizeof buf, "%dm%02ds", static_cast<int>(seconds) / 60,
                      static_cast<int>(seconds) % 60);
    else
        std::snprintf(buf, sizeof buf, "%dh%02dm", static_cast<int>(seconds) / 3600,
                      (static_cast<int>(seconds) / 60) % 60);
    return buf;
}

void print_banner(const TrainOptions& o, const Trainer& trainer, const Corpus& corpus,
                  const Tokenizer& tokenizer, const std::string& memory) {
    const ModelConfig& m = o.model;
    std::printf("tinygpt train\n");
    std::printf("  model     %s\n", m.describe().c_str());
    std::printf("  params    %s total · %s active per token\n",
                with_commas(m.total_params()).c_str(), with_commas(m.active_params()).c_str());
    std::printf("  tokenizer %s\n", tokenizer.describe().c_str());
    const CorpusSplit& s = trainer.split();
    std::printf("  corpus    %s · %s bytes · %s tokens (train %s · val %s)\n", corpus.path.c_str(),
                with_commas(static_cast<int64_t>(corpus.text_bytes)).c_str(),
                with_commas(static_cast<int64_t>(corpus.tokens.size())).c_str(),
                with_commas(static_cast<int64_t>(s.train.size)).c_str(),
                with_commas(static_cast<int64_t>(s.val.size)).c_str());
    std::printf("  batch     %d × %d tokens × accum %d = %s tokens/step · %lld steps\n", o.batch,
                m.ctx, o.accum, with_commas(o.tokens_per_step()).c_str(),
                static_cast<long long>(o.steps));
    std::printf("  schedule  %s · warmup %lld · lr %g → %g · AdamW wd %g · clip %g",
                schedule_name(o.schedule.kind).c_str(), static_cast<long long>(o.schedule.warmup),
                o.schedule.max_lr,
                o.schedule.kind == LrSchedule::Cosine ? o.schedule.min_lr : o.schedule.max_lr,
                o.adamw.weight_decay, o.grad_clip);
    if (m.is_moe()) {
        const int moe_layers = m.moe_layer_count();
        std::printf(
            " · aux weight %g\n  aux       load-balance loss summed over the %d MoE "
            "blocks (%d.0 at perfect balance)",
            m.aux_weight, moe_layers, moe_layers);
        std::printf("\n  routing   softmax top-%d, gates %s", m.topk,
                    m.renormalize_topk() ? "renormalised" : "not renormalised");
        if (m.z_loss_weight > 0) std::printf(" · z-loss %g", m.z_loss_weight);
        if (m.jitter > 0) std::printf(" · jitter %g", m.jitter);
        if (m.capacity_factor > 0) std::printf(" · capacity factor %g", m.capacity_factor);
        if (m.capacity_factor == 0) std::printf(" · dropless");
    }
    std::printf("\n  memory    %s", memory.c_str());
    std::printf("\n  system    %s\n  seed      %llu\n", system_summary().c_str(),
                static_cast<unsigned long long>(o.seed));
    std::fflush(stdout);
}

// What the run will hold: the model and its optimizer, the activations of a [batch, ctx]
// micro-batch, the inline samples, the loaded file while it is copied, and the corpus (as token
// ids: at most one per byte of its text).
MemoryEstimate estimate_memory(const TrainOptions& options, const std::string& corpus_path,
                               int sample_tokens, int sample_prompt_tokens,
                               double loaded_file_bytes) {
    TrainingMemoryPlan plan;
    plan.batch = options.batch;
    plan.sample_tokens = sample_tokens;
    plan.sample_prompt_tokens = sample_prompt_tokens;
    plan.loaded_file_bytes = loaded_file_bytes;
    std::error_code ec;
    const auto corpus_bytes = std::filesystem::file_size(corpus_path, ec);
    if (!ec) plan.corpus_tokens = static_cast<double>(corpus_bytes);
    return estimate_training(options.model, plan);
}

// What to change when the run does not fit: a loaded model's shape is fixed.
std::string memory_advice(const TrainOptions& o, bool loaded_model) {
    const std::string batch = "--batch (now " + std::to_string(o.batch) + ")";
    if (loaded_model) return "try a smaller " + batch;
    return "try a smaller --preset, " + batch + ", --ctx (now " + std::to_string(o.model.ctx) +
           ") or --moe-experts (now " + std::to_string(o.model.experts) + ")";
}

// Ctrl-C: the loop finishes the step in flight, saves (with --out) and exits with 130.
std::atomic<bool> g_interrupted{false};
extern "C" void on_sigint(int) {
    g_interrupted.store(true);
}

void TrainCommand::run() const {
    if (save_every < 0) throw Error("--save-every must be >= 0");
    if (format != "v2" && format != "v3")
        throw Error("unknown --format '" + format + "' (known: v2, v3)");
    if (save_every > 0 && out_path.empty()) throw Error("--save-every needs --out FILE");
    if (stop_at < 0) throw Error("--stop-at must be >= 0");
    if (!out_path.empty()) check_writable_target(out_path);
    // Held for the whole run: a second run saving to the same file is refused now, not after
    // hours of training.
    std::optional<io::SaveClaim> claim;
    if (!out_path.empty()) claim.emplace(out_path);
    if (!resume_path.empty() && !init_from.empty())
        throw Error("--resume continues a run and --init-from starts a new one: use one of them");
    std::vector<std::string> warnings;
    std::optional<ModelFile> resumed;
    std::optional<OpenedModel> initial;
    TrainOptions options;
    Tokenizer tokenizer = Tokenizer::bytes();
    if (!resume_path.empty()) {
        if (!tokenizer_path.empty())
            throw Error(
                "--tokenizer cannot be used with --resume: the run keeps the tokenizer "
                "stored in '" +
                resume_path + "'");
        resumed.emplace(ModelFile::read(resume_path));
        if (!resumed->tokenizer_json().empty())
            tokenizer = Tokenizer::from_hf_json(resumed->tokenizer_json(),
                                                resumed->tokenizer_config_json(), resume_path);
        options = flags.build_resumed(resumed->config(), resumed->training_state(), resume_path,
                                      warnings);
        if (!resumed->has_optimizer_state())
            warnings.push_back("'" + resume_path +
                               "' has no optimizer state: AdamW restarts from zero");
        else if (!resumed->has_training_state())
            warnings.push_back(
                "'" + resume_path + "' (format v" + std::to_string(resumed->version()) +
                ") has no data-stream state: batches after the resume differ from an "
                "uninterrupted run");
    } else if (!init_from.empty()) {
        initial.emplace(open_model(init_from, ReadOptions{/*optimizer=*/false}));
        tokenizer = initial->tokenizer;
        if (!tokenizer_path.empty() &&
            load_tokenizer(tokenizer_path).fingerprint() != tokenizer.fingerprint())
            throw Error("--tokenizer '" + tokenizer_path + "' differs from the tokenizer of '" +
                        init_from + "': the loaded weights only mean something with their own");
        options = flags.build_initialized(initial->config, init_from, warnings);
    } else {
        if (!tokenizer_path.empty()) tokenizer = load_tokenizer(tokenizer_path);
        options = flags.build(warnings);
        options.model.vocab = tokenizer.vocab_size();
    }
    for (const auto& w : warnings) std::fprintf(stderr, "warning: %s\n", w.c_str());
    if (format == "v2" && !out_path.empty()) {
        std::string why = v2_cannot_describe(options.model);
        if (why.empty() && !tokenizer.is_bytes()) why = "a BPE tokenizer";
        if (!why.empty())
            throw Error("--format v2 (the original TinyGPT's format) cannot describe " + why +
                        "; use --format v3");
    }
    if (val_every < 1) throw Error("--val-every must be at least 1");
    if (sample_every < 0) throw Error("--sample-every must be >= 0 (0 = only at the end)");
    if (sample_tokens < 0) throw Error("--sample-tokens must be >= 0");
    if (log_every < 1) throw Error("--log-every must be at least 1");
    const MemoryBudget budget = memory_budget(flags.max_memory);
    const double loaded_bytes = resumed   ? static_cast<double>(resumed->file_bytes())
                                : initial ? parameter_buffer_bytes(initial->config)
                                          : 0.0;
    const MemoryEstimate memory =
        estimate_memory(options, flags.corpus_path(), sample_tokens,
                        static_cast<int>(tokenizer.encode(sample_prompt).size()), loaded_bytes);
    check_memory(memory, budget, memory_advice(options, resumed || initial));
    apply_threads_flag(flags.threads, DefaultThreads::AllCores);
    const Corpus corpus = Corpus::load(flags.corpus_path(), tokenizer, /*progress=*/true);

    std::unique_ptr<std::ofstream> log;
    if (!log_path.empty()) {
        log = std::make_unique<std::ofstream>(log_path, std::ios::trunc);
        if (!*log) throw Error("cannot open --log file '" + log_path + "' for writing");
    }

    std::unique_ptr<Trainer> trainer_ptr;
    if (resumed) {
        ResumePoint from;
        from.weights = resumed->weights();
        from.adam_m = resumed->adam_m();
        from.adam_v = resumed->adam_v();
        from.state = resumed->training_state();
        from.exact = resumed->has_training_state();
        trainer_ptr = std::make_unique<Trainer>(options, corpus, from);
        resumed.reset();  // the weights are copied: release the file's mapping
    } else if (initial) {
        ResumePoint from;  // a new run (step 0, fresh AdamW, fresh data stream) from the weights
        from.weights = initial->f32_weights();
        trainer_ptr = std::make_unique<Trainer>(options, corpus, from);
        std::printf("initialised from '%s' (%s)\n", init_from.c_str(), initial->format.c_str());
        initial.reset();
    } else {
        trainer_ptr = std::make_unique<Trainer>(options, corpus);
    }
    Trainer& trainer = *trainer_ptr;
    print_banner(options, trainer, corpus, tokenizer, memory_summary(memory, budget));
    if (trainer.steps_done() > 0)
        std::printf("resuming from '%s' at step %lld\n", resume_path.c_str(),
                    static_cast<long long>(trainer.steps_done()));
    SaveOptions save_options;
    save_options.version = format == "v2" ? 2 : 3;
    set_tokenizer(save_options, tokenizer);
    RunSaves saves(out_path);
    auto save = [&] {
        Timer t;
        save_model_file(out_path, options.model, trainer.model().weights(), trainer.adam_m(),
                        trainer.adam_v(), trainer.state(), save_options);
        if (live_progress()) std::printf("\r\033[K");
        std::printf("saved %s (step %lld, %.0f ms)\n", out_path.c_str(),
                    static_cast<long long>(trainer.steps_done()), t.millis());
    };
    g_interrupted.store(false);
    std::signal(SIGINT, on_sigint);
    const bool live = live_progress();
    const ModelConfig& m = options.model;
    Model& model = trainer.model();

    Timer total;
    double window_seconds = 0.0;
    int window_steps = 0;
    float last_val = NAN;
    StepStats s;
    const int64_t first_step = trainer.steps_done();
    const int64_t end_step = stop_at > 0 ? std::min(stop_at, options.steps) : options.steps;
    if (end_step <= first_step)
        throw Error("--stop-at " + std::to_string(stop_at) + " is not after the current step " +
                    std::to_string(first_step));
    while (trainer.steps_done() < end_step) {
        s = trainer.step();
        window_seconds += s.seconds;
        ++window_steps;
        const int64_t done = s.step + 1;
        const bool last = done == end_step;
        const double tok_per_s =
            options.tokens_per_step() * window_steps / std::max(window_seconds, 1e-9);
        const double eta = (end_step - done) * (total.seconds() / (done - first_step));

        nlohmann::json record;
        const bool do_val = trainer.has_validation() && (done % val_every == 0 || last);
        if (do_val) {
            const ValStats v = trainer.validate();
            last_val = v.ce;
            if (live) std::printf("\r\033[K");
            std::printf("step %6lld  val loss %.4f", static_cast<long long>(done), v.ce);
            if (m.is_moe()) std::printf("  val aux %.4f", v.aux);
            std::printf("\n");
            record["val_loss"] = v.ce;
            if (m.is_moe()) record["val_aux"] = v.aux;
        }
        char aux[96] = "";
        if (m.is_moe()) {
            int n = std::snprintf(aux, sizeof aux, "  aux %.4f", s.aux);
            if (m.z_loss_weight > 0) n += std::snprintf(aux + n, sizeof aux - n, "  z %.3f", s.z);
            if (m.capacity_factor > 0)
                std::snprintf(aux + n, sizeof aux - n, "  dropped %ld", s.dropped);
        }
        char line[320];
        std::snprintf(line, sizeof line,
                      "step %6lld/%lld  loss %.4f%s  lr %.2e  %.0f tok/s  eta %s",
                      static_cast<long long>(done), static_cast<long long>(options.steps), s.ce,
                      aux, s.lr, tok_per_s, format_duration(eta).c_str());
        if (live) {
            std::printf("\r\033[K%s", line);
            if (last) std::printf("\n");
        } else if (done == 1 || done % log_every == 0 || last) {
            std::printf("%s\n", line);
        }
        if (done % log_every == 0) window_seconds = 0.0, window_steps = 0;
        if (sample_every > 0 && done % sample_every == 0 && !last && sample_tokens > 0) {
            const std::string text = generate_greedy_text(model.config(), model.weights(),
                                                          tokenizer, sample_prompt, sample_tokens);
            if (live) std::printf("\r\033[K");
            std::printf("sample  %s%s\n", printable(sample_prompt).c_str(),
                        printable(text).c_str());
        }
        std::fflush(stdout);
        if (!out_path.empty() && save_every > 0 && done % save_every == 0 && !last) {
            const int64_t next = done + save_every < end_step ? done + save_every : 0;
            saves.periodic(done, next, save);
        }

        if (log) {
            record["step"] = done;
            record["loss"] = s.ce;
            record["aux"] = s.aux;
            if (m.is_moe()) {
                record["z"] = s.z;
                record["dropped"] = s.dropped;
                record["aux_per_layer"] = s.aux_per_block;
                record["z_per_layer"] = s.z_per_block;
            }
            record["total_loss"] = s.loss;
            record["lr"] = s.lr;
            record["grad_norm"] = s.grad_norm;
            record["tok_per_s"] = options.tokens_per_step() / std::max(s.seconds, 1e-9);
            if (m.is_moe()) {
                nlohmann::json loads = nlohmann::json::array();
                for (int l = 0; l < m.layers; ++l) loads.push_back(model.expert_load(l));
                record["expert_load"] = loads;
            }
            *log << record.dump() << '\n';
            if (!*log) throw Error("writing --log file '" + log_path + "' failed");
        }
        if (g_interrupted.load()) {
            std::printf("\ninterrupted at step %lld\n", static_cast<long long>(done));
            if (!out_path.empty())
                saves.final(done, save);
            else
                std::printf("nothing saved (no --out)\n");
            std::fflush(stdout);
            throw ExitCode{130};
        }
    }
    std::signal(SIGINT, SIG_DFL);
    if (!out_path.empty()) saves.final(end_step, save);
    const double seconds = total.seconds();
    const int64_t steps_run = end_step - first_step;
    if (sample_tokens > 0) {
        std::printf("sample  %s%s\n", printable(sample_prompt).c_str(),
                    printable(generate_greedy_text(model.config(), model.weights(), tokenizer,
                                                   sample_prompt, sample_tokens))
                        .c_str());
    }
    std::printf("done — %lld steps in %s (%.2f step/s, %.0f tok/s) · final loss %.4f",
                static_cast<long long>(steps_run), format_duration(seconds).c_str(),
                steps_run / seconds, options.tokens_per_step() * steps_run / seconds, s.ce);
    if (!std::isnan(last_val)) std::printf(" · val %.4f", last_val);
    if (m.is_moe()) {
        std::printf("\nexpert load (last step, per MoE block):");
        for (int l = 0; l < m.layers; ++l) {
            if (!m.is_moe_layer(l)) continue;
            std::printf("\n  block %d:", l);
            for (float f : model.expert_load(l)) std::printf(" %.2f", f);
        }
    }
    std::printf("\npeak RSS %.0f MB\n", peak_rss_mb());
}

}  // namespace

void register_train(CLI::App& app) {
    auto cmd_state = std::make_shared<TrainCommand>();
    CLI::App* cmd = app.add_subcommand("train", "Train a model on a text corpus");
    cmd_state->flags.add_model_flags(cmd);
    cmd_state->flags.add_training_flags(cmd, /*warmup_flag_is_lr=*/true);
    cmd->add_option("--val-every", cmd_state->val_every, "Steps between validation losses")
        ->capture_default_str();
    cmd->add_option("--sample-every", cmd_state->sample_every,
                    "Steps between greedy samples (0 = only at the end)")
        ->capture_default_str();
    cmd->add_option("--sample-tokens", cmd_state->sample_tokens, "Tokens per sample")
        ->capture_default_str();
    cmd->add_option("--sample-prompt", cmd_state->sample_prompt, "Prompt of the samples")
        ->capture_default_str();
    cmd->add_option("--log", cmd_state->log_path, "Write one JSON object per step to this file");
    cmd->add_option("--out", cmd_state->out_path,
                    "Save the model (and optimizer state) to this .tinygpt file")
        ->check(non_empty_path());
    cmd->add_option("--save-every", cmd_state->save_every, "Also save every N steps (needs --out)");
    cmd->add_option("--format", cmd_state->format,
                    "File format: v3 (ours) or v2 (opens in the original TinyGPT)")
        ->capture_default_str();
    cmd->add_option(
        "--stop-at", cmd_state->stop_at,
        "Stop (and save) after this step, keeping the schedule of --steps; continue later "
        "with --resume");
    cmd->add_option(
        "--resume", cmd_state->resume_path,
        "Continue a saved run exactly (weights, AdamW moments, step, data stream); --steps "
        "is the absolute target");
    cmd->add_option(
        "--init-from", cmd_state->init_from,
        "Start a new run (step 0, fresh optimizer) from the weights, architecture and "
        "tokenizer of any model (.tinygpt, HF directory, GGUF); the recipe comes from the "
        "flags");
    cmd->add_option(
        "--tokenizer", cmd_state->tokenizer_path,
        "Tokenizer of a new model: a tokenizer.json, an HF directory, GPT-2's "
        "encoder.json + vocab.bpe, a model file (.tinygpt, GGUF), or 'bytes' (default)");
    cmd->add_option("--log-every", cmd_state->log_every,
                    "Steps between progress lines when not on a terminal")
        ->capture_default_str();
    cmd->callback([cmd_state] { cmd_state->run(); });
}

}  // namespace tinygpt::cli
