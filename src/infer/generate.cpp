#include "infer/generate.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <numeric>
#include <string>

#include "infer/session.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"
#include "util/sysinfo.h"
#include "util/thread_tuner.h"
#include "util/timer.h"

namespace tinygpt {

double GenerateStats::decode_tok_per_s() const {
    const double ms = std::accumulate(itl_ms.begin(), itl_ms.end(), 0.0);
    return ms > 0 ? static_cast<double>(itl_ms.size()) / (ms / 1e3) : 0.0;
}

std::vector<int> bytes_to_tokens(const std::string& text) {
    std::vector<int> tokens;
    tokens.reserve(text.size());
    for (unsigned char c : text) tokens.push_back(c);
    return tokens;
}

namespace {

// Next-token logits of a growing sequence: with the KV cache, or by recomputing everything.
class LogitsSource {
  public:
    // Without the cache, f32 weights run through the training forward (an independent check of
    // the session); weights in another type recompute the whole sequence through the session.
    LogitsSource(const ModelWeights& weights, const GenerateOptions& options)
        : cfg_(weights.config()), recompute_(!options.use_cache) {
        if (!options.use_cache && weights.f32_base()) {
            model_ = std::make_unique<Model>(cfg_, weights.f32_base());
            model_->reserve(1, cfg_.ctx);
            return;
        }
        if (options.use_cache && options.session) {
            // Another model's session would sample from logits of another vocabulary.
            if (!options.session->runs(weights))
                throw Error(
                    "generate: the session handed in runs other weights than the model "
                    "being sampled");
            session_ = options.session;
            session_->reset();
        } else {
            owned_session_ = std::make_unique<InferenceSession>(weights);
            session_ = owned_session_.get();
        }
        if (options.use_cache) session_->observe_routing(options.routing);
    }
    // Appends tokens to the sequence and returns the logits after its last token. Error when
    // they are not finite (weights that overflow): sampling from NaN would print garbage.
    const float* feed(const std::vector<int>& tokens) {
        const float* logits;
        seq_.insert(seq_.end(), tokens.begin(), tokens.end());
        const int T = static_cast<int>(seq_.size());
        if (model_) {
            model_->forward(seq_.data(), nullptr, 1, T);
            logits = model_->logits() + static_cast<size_t>(T - 1) * cfg_.vocab;
        } else if (recompute_) {
            session_->reset();
            logits = session_->forward(seq_.data(), T);
        } else {
            logits = session_->forward(tokens.data(), static_cast<int>(tokens.size()));
        }
        for (int v = 0; v < cfg_.vocab; ++v)
            if (!std::isfinite(logits[v]))
                throw Error("the model's logits are NaN/inf at position " +
                            std::to_string(length() - 1) + " (token id " + std::to_string(v) +
                            "): its numbers overflow");
        return logits;
    }
    int length() const { return static_cast<int>(seq_.size()); }
    void reset() {
        if (session_) session_->reset();
        seq_.clear();
    }

  private:
    ModelConfig cfg_;
    bool recompute_ = false;
    std::unique_ptr<InferenceSession> owned_session_;
    InferenceSession* session_ = nullptr;  // owned_session_, or the caller's
    std::unique_ptr<Model> model_;
    std::vector<int> seq_;
};

// Threads by work size: below about two million multiply-adds per token per thread (the tiny
// presets), a decode step's dozens of fork/joins cost more than a second thread saves, so such a
// model decodes on one thread without trying more; the tuner picks among the counts that may pay.
int decode_thread_cap(const ModelConfig& cfg, int threads) {
    constexpr double kMultiplyAddsPerThread = 2e6;
    const double per_token = static_cast<double>(cfg.active_params());
    return std::clamp(static_cast<int>(per_token / kMultiplyAddsPerThread), 1,
                      std::max(1, threads));
}

}  // namespace

GenerateStats generate(const ModelConfig& cfg, const float* weights, const std::vector<int>& prompt,
                       const GenerateOptions& options, const std::function<void(int)>& on_token) {
    return generate(ModelWeights::from_f32(cfg, weights), prompt, options, on_token);
}

GenerateStats generate(const ModelWeights& weights, const std::vector<int>& prompt,
                       const GenerateOptions& options, const std::function<void(int)>& on_token) {
    const ModelConfig& cfg = weights.config();
    if (prompt.empty()) throw Error("the prompt is empty");
    if (static_cast<int>(prompt.size()) > cfg.ctx)
        throw Error("the prompt has " + std::to_string(prompt.size()) +
                    " tokens, more than the model's context of " + std::to_string(cfg.ctx));
    if (options.max_new_tokens < 0) throw Error("--tokens must be >= 0");
    if (options.keep < 0 || (!options.stop_at_context && options.keep >= cfg.ctx - 1))
        throw Error("--keep must be from 0 to " + std::to_string(cfg.ctx - 2) +
                    " (the context is " + std::to_string(cfg.ctx) +
                    " tokens; the window needs room to slide)");
    Sampler sampler(options.sampling, options.seed);
    LogitsSource source(weights, options);
    GenerateStats stats;
    stats.prompt_tokens = static_cast<int>(prompt.size());
    if (options.max_new_tokens == 0) return stats;

    const int vocab =
        options.sample_vocab > 0 ? std::min(options.sample_vocab, cfg.vocab) : cfg.vocab;
    // The tokens in the model's window (what the cache holds), for sliding past the context.
    std::vector<int> window = prompt;
    const int keep = std::min(options.keep, static_cast<int>(prompt.size()));
    // Learned positions slide by one token, RoPE by half the slidable part.
    const int drop = cfg.has_position_table() ? 1 : std::max(1, (cfg.ctx - keep) / 2);
    // Cached decode steps take their thread count from the tuner (their bits do not depend on
    // it); the prompt, the slides and recomputed steps run on all threads.
    const int all_threads = num_threads();
    const bool tune = options.decode_threads <= 0 && options.use_cache;
    ThreadTuner tuner(
        tune ? decode_thread_cap(cfg, std::max(all_threads, options.decode_thread_limit)) : 1);
    auto decode_threads = [&] {
        if (tune) return tuner.threads();
        return options.decode_threads > 0 ? options.decode_threads : all_threads;
    };
    struct RestoreThreads {
        int n;
        ~RestoreThreads() { set_num_threads(n); }
    } restore{all_threads};
    Timer total;
    int token = sampler.next(source.feed(prompt), vocab);
    stats.ttft_ms = total.millis();
    while (true) {
        if (token == options.stop_token) {
            stats.hit_stop = true;
            break;
        }
        on_token(token);
        ++stats.generated;
        if (stats.generated >= options.max_new_tokens) break;
        if (options.keep_going && !options.keep_going()) break;
        Timer step;
        if (source.length() == cfg.ctx) {  // no room to feed the last token back in
            if (options.stop_at_context) {
                stats.hit_context = true;
                break;
            }
            window.erase(window.begin() + keep, window.begin() + keep + drop);
            window.push_back(token);
            source.reset();
            set_num_threads(all_threads);
            token = sampler.next(source.feed(window), vocab);
            ++stats.slides;
            stats.itl_ms.push_back(step.millis());
        } else {
            window.push_back(token);
            const int threads = decode_threads();
            if (threads != num_threads()) set_num_threads(threads);
            token = sampler.next(source.feed({token}), vocab);
            const double ms = step.millis();
            tuner.record(ms);
            stats.itl_ms.push_back(ms);
        }
    }
    stats.decode_threads = decode_threads();
    stats.total_ms = total.millis();
    return stats;
}

std::string generate_greedy_text(const ModelConfig& cfg, const float* weights,
                                 const Tokenizer& tokenizer, const std::string& prompt,
                                 int new_tokens) {
    GenerateOptions options;
    options.max_new_tokens = new_tokens;
    options.sampling.temperature = 0.0f;
    options.sample_vocab = tokenizer.vocab_size();
    options.stop_token = tokenizer.eos_id().value_or(-1);
    options.stop_at_context = true;  // a short look at the model while it trains
    std::vector<int> ids = tokenizer.encode(prompt.empty() ? "\n" : prompt);
    if (ids.empty()) ids.push_back(0);
    if (static_cast<int>(ids.size()) > cfg.ctx) ids.erase(ids.begin(), ids.end() - cfg.ctx);
    std::vector<int> out;
    generate(cfg, weights, ids, options, [&](int token) { out.push_back(token); });
    return tokenizer.decode(out);
}

}  // namespace tinygpt
