#include "cli/training_command.h"

#include <cstdio>
#include <fstream>
#include <memory>
#include <optional>

#include "cli/common_flags.h"
#include "cli/memory_flag.h"
#include "cli/training_run.h"
#include "dist/communicator.h"
#include "io/atomic_write.h"
#include "io/model_file.h"
#include "load/model_source.h"
#include "util/error.h"

namespace tinygpt::cli {

void TrainingCommand::add_run_flags(CLI::App* cmd, bool train_only) {
    cmd->add_option("--val-every", val_every, "Steps between validation losses")
        ->capture_default_str();
    cmd->add_option("--sample-every", sample_every,
                    "Steps between greedy samples (0 = only at the end)")
        ->capture_default_str();
    cmd->add_option("--sample-tokens", sample_tokens, "Tokens per sample")->capture_default_str();
    cmd->add_option("--sample-prompt", sample_prompt, "Prompt of the samples")
        ->capture_default_str();
    cmd->add_option("--log", log_path, "Write one JSON object per step to this file");
    cmd->add_option("--out", out_path, "Save the model (and optimizer state) to this .tinygpt file")
        ->check(non_empty_path());
    cmd->add_option("--save-every", save_every, "Also save every N steps (needs --out)");
    cmd->add_option(
        "--stop-at", stop_at,
        "Stop (and save) after this step, keeping the schedule of --steps; continue later "
        "with --resume");
    cmd->add_option(
        "--resume", resume_path,
        "Continue a saved run exactly (weights, AdamW moments, step, data stream); --steps "
        "is the absolute target");
    cmd->add_option(
        "--init-from", init_from,
        "Start a new run (step 0, fresh optimizer) from the weights, architecture and "
        "tokenizer of any model (.tinygpt, HF directory, GGUF); the recipe comes from the "
        "flags");
    cmd->add_option("--log-every", log_every, "Steps between progress lines when not on a terminal")
        ->capture_default_str();
    cmd->add_option("--expert-parallel", expert_parallel,
                    "Under mpirun: split each MoE layer's experts over groups of this many ranks "
                    "(the other ranks split the batches); must divide the ranks and the experts")
        ->capture_default_str();
    if (!train_only) return;
    cmd->add_option("--format", format,
                    "File format: v3 (ours) or v2 (opens in the original TinyGPT)")
        ->capture_default_str();
    cmd->add_option(
        "--tokenizer", tokenizer_path,
        "Tokenizer of a new model: a tokenizer.json, an HF directory, GPT-2's "
        "encoder.json + vocab.bpe, a model file (.tinygpt, GGUF), or 'bytes' (default)");
}

namespace {

// A resumed run's batch and accum are its single-process equivalent (Trainer::state()); on N
// ranks in expert-parallel groups of P, each rank takes batch/P sequences and accum·P/N
// micro-batches. --batch / --accum given on the command line are per rank already.
void split_over_ranks(TrainOptions& o, int ranks, int expert_parallel, bool batch_given,
                      bool accum_given, const std::string& file) {
    if (ranks == 1) return;
    const std::string run = "the run in '" + file + "' takes " + std::to_string(o.batch) +
                            " sequences × accum " + std::to_string(o.accum) + " per step";
    if (!batch_given) {
        if (o.batch % expert_parallel != 0)
            throw Error(run + ": its batch does not split into expert-parallel groups of " +
                        std::to_string(expert_parallel) + " ranks; give --batch (per rank)");
        o.batch /= expert_parallel;
    }
    if (!accum_given) {
        const int64_t groups = ranks / expert_parallel;
        if (o.accum % groups != 0)
            throw Error(run + ": its accum does not split over " + std::to_string(groups) +
                        " data-parallel group(s) of ranks; give --accum (per rank)");
        o.accum = static_cast<int>(o.accum / groups);
    }
}

}  // namespace

void TrainingCommand::run(const Hooks& hooks) const {
    Communicator& comm = world();
    // Rank 0 writes the files (saves, --log); every rank computes.
    const bool lead = comm.rank() == 0;
    if (expert_parallel < 1)
        throw Error("--expert-parallel must be at least 1 (got " + std::to_string(expert_parallel) +
                    ")");
    if (comm.size() % expert_parallel != 0)
        throw Error("--expert-parallel " + std::to_string(expert_parallel) +
                    " must divide the number of ranks (" + std::to_string(comm.size()) + ")");
    if (save_every < 0) throw Error("--save-every must be >= 0");
    if (format != "v2" && format != "v3")
        throw Error("unknown --format '" + format + "' (known: v2, v3)");
    if (save_every > 0 && out_path.empty()) throw Error("--save-every needs --out FILE");
    if (stop_at < 0) throw Error("--stop-at must be >= 0");
    if (!out_path.empty() && lead) check_writable_target(out_path);
    // Held for the whole run: a second run saving to the same file is refused now, not after
    // hours of training.
    std::optional<io::SaveClaim> claim;
    if (!out_path.empty() && lead) claim.emplace(out_path);
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
        if (resumed_file)
            resumed.swap(resumed_file);
        else
            resumed.emplace(ModelFile::read(resume_path));
        if (!resumed->tokenizer_json().empty())
            tokenizer = Tokenizer::from_hf_json(resumed->tokenizer_json(),
                                                resumed->tokenizer_config_json(), resume_path);
        options = flags.build_resumed(resumed->config(), resumed->training_state(), resume_path,
                                      warnings);
        split_over_ranks(options, comm.size(), expert_parallel, flags.given("--batch"),
                         flags.given("--accum"), resume_path);
        if (const auto& d = resumed->training_state().distillation; d && !hooks.distills)
            warnings.push_back("'" + resume_path + "' is a distillation from '" + d->teacher +
                               "': train continues it on the cross-entropy alone (distill "
                               "--resume goes on distilling)");
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
        if (hooks.fresh_tokenizer) tokenizer = *hooks.fresh_tokenizer;
        if (!tokenizer_path.empty()) tokenizer = load_tokenizer(tokenizer_path);
        options = flags.build(warnings);
        options.model.vocab = hooks.fresh_vocab > 0 ? hooks.fresh_vocab : tokenizer.vocab_size();
    }
    for (const auto& w : warnings) std::fprintf(stderr, "warning: %s\n", w.c_str());
    if (expert_parallel > 1) {
        if (!options.model.is_moe())
            throw Error("--expert-parallel needs an MoE model (--moe-experts)");
        if (options.model.experts % expert_parallel != 0)
            throw Error("--expert-parallel " + std::to_string(expert_parallel) +
                        " must divide the experts per layer (" +
                        std::to_string(options.model.experts) + ")");
    }
    if (hooks.check_student) hooks.check_student(options.model, tokenizer);
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
    MemoryBudget budget = memory_budget(flags.max_memory);
    // The ranks on this machine share its memory (a --max-memory limit is per rank already).
    if (const int local = ranks_on_this_machine(); local > 1 && !budget.user_limit) {
        budget.bytes /= local;
        budget.source += " ÷ " + std::to_string(local) + " ranks on this machine";
    }
    const double loaded_bytes = resumed   ? static_cast<double>(resumed->file_bytes())
                                : initial ? parameter_buffer_bytes(initial->config)
                                          : 0.0;
    MemoryEstimate memory = estimate_memory(
        options, flags.corpus_path(), sample_tokens,
        static_cast<int>(tokenizer.encode(sample_prompt).size()), loaded_bytes, expert_parallel);
    // A teacher (distill) is held with the run's other memory.
    if (hooks.extra_memory) memory.add("teacher", hooks.extra_memory(options));
    check_memory(memory, budget, memory_advice(options, resumed || initial));
    apply_threads_flag(flags.threads);
    const Corpus corpus = Corpus::load(flags.corpus_path(), tokenizer, /*progress=*/true);

    std::unique_ptr<std::ofstream> log;
    if (!log_path.empty() && lead) {
        log = std::make_unique<std::ofstream>(log_path, std::ios::trunc);
        if (!*log) throw Error("cannot open --log file '" + log_path + "' for writing");
    }

    const Parallelism parallel{&comm, expert_parallel};
    std::unique_ptr<Trainer> trainer_ptr;
    if (resumed) {
        ResumePoint from;
        from.weights = resumed->weights();
        from.adam_m = resumed->adam_m();
        from.adam_v = resumed->adam_v();
        from.state = resumed->training_state();
        from.exact = resumed->has_training_state();
        trainer_ptr = std::make_unique<Trainer>(options, corpus, from, parallel);
        resumed.reset();  // the weights are copied: release the file's mapping
    } else if (initial) {
        ResumePoint from;  // a new run (step 0, fresh AdamW, fresh data stream) from the weights
        from.weights = initial->f32_weights();
        trainer_ptr = std::make_unique<Trainer>(options, corpus, from, parallel);
        std::printf("initialised from '%s' (%s)\n", init_from.c_str(), initial->format.c_str());
        initial.reset();
    } else {
        trainer_ptr = std::make_unique<Trainer>(options, corpus, parallel);
    }
    Trainer& trainer = *trainer_ptr;
    TrainingRun run;
    run.out_path = out_path;
    run.save_every = save_every;
    run.format_version = format == "v2" ? 2 : 3;
    run.stop_at = stop_at;
    run.val_every = val_every;
    run.sample_every = sample_every;
    run.sample_tokens = sample_tokens;
    run.sample_prompt = sample_prompt;
    run.log_every = log_every;
    run.val_bytes_per_token =
        validation_bytes_per_token(corpus, tokenizer, options.val_split, options.model.ctx);
    if (hooks.prepare) hooks.prepare(trainer, tokenizer, run);
    print_banner(hooks.command, options, trainer, corpus, tokenizer,
                 memory_summary(memory, budget));
    if (hooks.after_banner) hooks.after_banner();
    if (trainer.steps_done() > 0)
        std::printf("resuming from '%s' at step %lld\n", resume_path.c_str(),
                    static_cast<long long>(trainer.steps_done()));
    run_training_loop(run, trainer, options, tokenizer, log.get(), log_path);
}

}  // namespace tinygpt::cli
