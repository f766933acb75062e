// `tinygpt sample FILE`: generate text from a saved model, streaming it to stdout. Diagnostics
// (load time, speed) go to stderr, so `> out.txt` keeps only the text.
#include <cstdio>
#include <memory>

#include "cli/commands.h"
#include "cli/common_flags.h"
#include "cli/memory_flag.h"
#include "cli/run_weights.h"
#include "infer/generate.h"
#include "load/model_source.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"
#include "util/sysinfo.h"

namespace tinygpt::cli {

namespace {

struct SampleCommand {
    std::string path;
    std::string prompt = "ROMEO:";
    GenerateOptions gen;
    bool no_cache = false;
    int threads = 0;
    std::string max_memory, dtype;

    void run() {
        if (gen.max_new_tokens < 0) throw Error("--tokens must be >= 0");
        gen.sampling.validate();
        apply_threads_flag(threads);
        apply_decode_threads_flag(threads, gen);
        const OpenedModel model = open_model(path, ReadOptions{/*optimizer=*/false});
        const ModelConfig& cfg = model.config;
        if (prompt.empty())
            throw Error("--prompt is empty (the model needs at least one token to continue)");
        const std::vector<int> ids = model.tokenizer.encode(prompt);
        if (ids.empty()) throw Error("--prompt encodes to no tokens");
        if (static_cast<int>(ids.size()) > cfg.ctx)
            throw Error("--prompt has " + std::to_string(ids.size()) +
                        " tokens, more than the model's context of " + std::to_string(cfg.ctx));
        if (gen.keep < 0 || (!gen.stop_at_context && gen.keep >= cfg.ctx - 1))
            throw Error("--keep must be from 0 to " + std::to_string(cfg.ctx - 2) +
                        " (the model's context is " + std::to_string(cfg.ctx) +
                        " tokens; the window needs room to slide)");
        GenerationMemoryPlan plan;
        plan.prompt_tokens = static_cast<int>(ids.size());
        plan.new_tokens = gen.max_new_tokens;
        plan.use_cache = !no_cache;
        plan.stop_at_context = gen.stop_at_context;
        plan.keep = gen.keep;
        plan.stored_weight_bytes = typed_weight_bytes(model, dtype);
        check_memory(estimate_generation(cfg, plan), memory_budget(max_memory),
                     "the model is too large for this machine: sample a smaller one");
        const ModelWeights weights = run_weights(model, dtype);
        std::fprintf(stderr, "loaded %s (%s, %s) in %.1f ms%s\n", path.c_str(),
                     model.format.c_str(), cfg.describe().c_str(), model.load_ms,
                     dtype.empty() ? "" : (", running as " + weights.type_summary()).c_str());
        gen.use_cache = !no_cache;
        gen.sample_vocab = model.tokenizer.vocab_size();
        gen.stop_token = model.tokenizer.eos_id().value_or(-1);
        std::fwrite(prompt.data(), 1, prompt.size(), stdout);
        std::fflush(stdout);
        // Decoded text streams out in whole UTF-8 characters, as soon as they are complete.
        StreamingDecoder text(model.tokenizer);
        const GenerateStats st = generate(weights, ids, gen, [&](int token) {
            const std::string piece = text.push(token);
            std::fwrite(piece.data(), 1, piece.size(), stdout);
            std::fflush(stdout);
        });
        const std::string rest = text.finish();
        std::fwrite(rest.data(), 1, rest.size(), stdout);
        std::fputc('\n', stdout);
        std::fflush(stdout);
        if (st.hit_context)
            std::fprintf(stderr, "stopped: the model's context of %d tokens is full\n", cfg.ctx);
        if (st.slides > 0)
            std::fprintf(
                stderr, "past the context of %d tokens: the window slid %d time%s%s\n", cfg.ctx,
                st.slides, st.slides == 1 ? "" : "s",
                gen.keep > 0
                    ? (" (the first " + std::to_string(gen.keep) + " prompt tokens kept)").c_str()
                    : "");
        if (st.hit_stop) std::fprintf(stderr, "stopped: end-of-text token\n");
        std::fprintf(
            stderr,
            "prompt %d tokens · generated %d · TTFT %.1f ms · decode %.0f tok/s on %d "
            "thread%s%s · %s\n",
            st.prompt_tokens, st.generated, st.ttft_ms, st.decode_tok_per_s(), st.decode_threads,
            st.decode_threads == 1 ? "" : "s",
            gen.decode_threads > 0 || !gen.use_cache ? "" : " (chosen by work size and timing)",
            gen.use_cache ? "KV-cached" : "uncached (recomputed)");
    }
};

}  // namespace

void register_sample(CLI::App& app) {
    auto state = std::make_shared<SampleCommand>();
    CLI::App* cmd = app.add_subcommand("sample", "Generate text from a model");
    cmd->add_option("file", state->path, kModelHelp)->required();
    cmd->add_option("--prompt", state->prompt, "Text to continue")->capture_default_str();
    cmd->add_option("--tokens", state->gen.max_new_tokens, "Tokens to generate")
        ->capture_default_str();
    cmd->add_option("--temperature,--temp", state->gen.sampling.temperature,
                    "Sampling temperature (<= 0: greedy)")
        ->capture_default_str();
    cmd->add_option("--top-k", state->gen.sampling.top_k, "Keep the k most likely tokens (0: all)")
        ->capture_default_str();
    cmd->add_option("--top-p", state->gen.sampling.top_p,
                    "Nucleus: keep the smallest set with this mass")
        ->capture_default_str();
    cmd->add_option("--seed", state->gen.seed, "Sampling seed (same seed, same text)")
        ->check(seed_validator())
        ->capture_default_str();
    cmd->add_flag("--no-cache", state->no_cache,
                  "Recompute the whole sequence every token (for checking)");
    cmd->add_option("--keep", state->gen.keep,
                    "Past the context, keep the first N prompt tokens (a system prompt) when the "
                    "window slides")
        ->capture_default_str();
    cmd->add_flag("--stop-at-context", state->gen.stop_at_context,
                  "Stop when the context is full instead of sliding the window");
    cmd->add_option("--threads", state->threads,
                    "Threads (0 = all cores for the prompt; decode picks 1..all by timing)")
        ->capture_default_str();
    add_max_memory_flag(cmd, state->max_memory);
    add_run_dtype_flag(cmd, state->dtype);
    cmd->callback([state] { state->run(); });
}

}  // namespace tinygpt::cli
