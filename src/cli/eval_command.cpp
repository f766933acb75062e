// `tinygpt eval MODEL --corpus TEXT`: cross-entropy per token, bits per byte and perplexity of a
// model on a text, over non-overlapping windows that cover it (infer/evaluate.h).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/common_flags.h"
#include "cli/memory_flag.h"
#include "cli/run_weights.h"
#include "cli/train_flags.h"
#include "infer/evaluate.h"
#include "load/model_source.h"
#include "train/data.h"
#include "util/error.h"
#include "util/sysinfo.h"

namespace tinygpt::cli {

namespace {

struct EvalCommand {
    std::string path, corpus_path;
    int batch = 8, threads = 0;
    int64_t max_tokens = 0;
    std::string max_memory, dtype;
    bool json = false, per_token = false;

    // What scoring `tokens` tokens holds: evaluate() runs windows of min(ctx, predictions)
    // tokens, at most --batch of them (and never more than the text has) per forward.
    MemoryEstimate estimate(const ModelConfig& cfg, size_t tokens, double weight_bytes) const {
        int64_t predictions = static_cast<int64_t>(tokens) - 1;
        if (max_tokens > 0) predictions = std::min(predictions, max_tokens);
        if (per_token)
            return estimate_scoring(cfg, static_cast<int>(std::min<int64_t>(predictions, cfg.ctx)),
                                    weight_bytes);
        const int64_t window = std::min<int64_t>(cfg.ctx, predictions);
        const int64_t windows = (predictions + window - 1) / window;
        return estimate_evaluation(cfg, static_cast<double>(std::min<int64_t>(batch, windows)),
                                   static_cast<int>(window), weight_bytes);
    }

    void run() const {
        if (batch < 1) throw Error("--batch must be at least 1");
        if (max_tokens < 0) throw Error("--max-tokens must be >= 0 (0 = the whole text)");
        apply_threads_flag(threads);
        const OpenedModel model = open_model(path, ReadOptions{/*optimizer=*/false});
        const ModelConfig& cfg = model.config;
        const Corpus corpus = Corpus::load(corpus_path, model.tokenizer, /*progress=*/!json);
        if (corpus.tokens.size() < 2)
            throw Error("corpus '" + corpus_path + "' has " + std::to_string(corpus.tokens.size()) +
                        " token(s): scoring needs at least 2");
        check_memory(estimate(cfg, corpus.tokens.size(), typed_weight_bytes(model, dtype)),
                     memory_budget(max_memory),
                     per_token ? "the model is too large for this machine: score with a smaller one"
                               : "try a smaller --batch (now " + std::to_string(batch) +
                                     ") or --max-tokens");
        const ModelWeights weights = run_weights(model, dtype);
        if (per_token) {
            const std::vector<double> lp = next_token_logprobs(weights, corpus.tokens);
            nlohmann::json out = {{"model", path}, {"ids", corpus.tokens}, {"logprobs", lp}};
            std::printf("%s\n", out.dump().c_str());
            return;
        }
        const EvalResult r = evaluate(weights, corpus.tokens, model.tokenizer, batch, max_tokens);
        if (json) {
            nlohmann::json out = {{"model", path},
                                  {"corpus", corpus_path},
                                  {"windows", r.windows},
                                  {"tokens_scored", r.tokens},
                                  {"bytes_scored", r.bytes},
                                  {"cross_entropy", r.cross_entropy()},
                                  {"bits_per_byte", r.bits_per_byte()},
                                  {"perplexity", r.perplexity()}};
            if (cfg.is_moe()) {
                out["aux"] = r.aux();
                out["z"] = r.z();
            }
            std::printf("%s\n", out.dump().c_str());
            return;
        }
        std::printf(
            "tinygpt eval\n  model    %s (%s) · %s\n  corpus   %s · %s bytes · %s tokens\n"
            "  scored   %s tokens (%s bytes) in %d windows of up to %d\n",
            path.c_str(), model.format.c_str(), cfg.describe().c_str(), corpus_path.c_str(),
            with_commas(static_cast<int64_t>(corpus.text_bytes)).c_str(),
            with_commas(static_cast<int64_t>(corpus.tokens.size())).c_str(),
            with_commas(r.tokens).c_str(), with_commas(r.bytes).c_str(), r.windows, cfg.ctx);
        std::printf("cross-entropy  %.4f nats/token (uniform: %.4f)\n", r.cross_entropy(),
                    std::log(static_cast<double>(model.tokenizer.vocab_size())));
        std::printf("bits per byte  %.4f\nperplexity     %.3f (per token)\n", r.bits_per_byte(),
                    r.perplexity());
        if (cfg.is_moe())
            std::printf(
                "aux (load balance, not in the loss above)  %.4f\nz (router z-loss)  %.4f\n",
                r.aux(), r.z());
    }
};

}  // namespace

void register_eval(CLI::App& app) {
    auto state = std::make_shared<EvalCommand>();
    CLI::App* cmd =
        app.add_subcommand("eval", "Cross-entropy, bits per byte and perplexity on a text");
    cmd->add_option("file", state->path, kModelHelp)->required();
    cmd->add_option("--corpus", state->corpus_path, "Text to score")->required();
    cmd->add_option("--max-tokens", state->max_tokens,
                    "Score at most this many tokens from the start (0 = the whole text)")
        ->capture_default_str();
    cmd->add_option("--batch", state->batch, "Windows per forward pass")->capture_default_str();
    cmd->add_option("--threads", state->threads, "Threads (0 = all cores)")->capture_default_str();
    add_max_memory_flag(cmd, state->max_memory);
    add_run_dtype_flag(cmd, state->dtype);
    cmd->add_flag("--json", state->json, "Print one JSON object");
    cmd->add_flag("--per-token", state->per_token,
                  "Print {ids, logprobs}: the log-probability of each next token given the ones "
                  "before (the text must fit the context)");
    cmd->callback([state] { state->run(); });
}

}  // namespace tinygpt::cli
