#include "infer/evaluate.h"

#include <algorithm>
#include <cmath>

#include "infer/session.h"
#include "model/model.h"
#include "moe/router.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"

namespace tinygpt {

double EvalResult::bits_per_byte() const {
    return bytes ? nll_sum / std::log(2.0) / static_cast<double>(bytes) : 0;
}

double EvalResult::perplexity() const {
    return std::exp(cross_entropy());
}

namespace {

void check_text(size_t tokens) {
    if (tokens < 2)
        throw Error("the text has " + std::to_string(tokens) +
                    " token(s); scoring needs at least 2 (one to predict from, one to predict)");
}

// −log softmax(row)[target].
double nll_of(const float* row, int vocab, int target) {
    double max = row[0];
    for (int v = 1; v < vocab; ++v) max = std::max<double>(max, row[v]);
    double sum = 0;
    for (int v = 0; v < vocab; ++v) sum += std::exp(row[v] - max);
    return max + std::log(sum) - row[target];
}

// Weights in another type than f32: window by window through the inference path, with the
// router statistics of each window taken from the routing as each MoE block reports it (the
// decisions are gone once the next block routes).
EvalResult evaluate_stored(const ModelWeights& weights, const std::vector<int32_t>& tokens,
                           const Tokenizer& tokenizer, int64_t predictions, int T) {
    const ModelConfig& cfg = weights.config();
    InferenceSession session(weights);
    EvalResult r;
    session.observe_routing([&](int, const RouterDecisions& d) {
        const RouterShape shape = cfg.moe_shape(d.rows).router();
        r.aux_sum += load_balance_loss(d.probs, d.counts, shape) * static_cast<double>(d.rows);
        r.z_sum += router_z_loss(d.lse, d.rows) * static_cast<double>(d.rows);
    });
    for (int64_t start = 0; start < predictions;) {
        const int n = static_cast<int>(std::min<int64_t>(T, predictions - start));
        const std::vector<int> ids(tokens.begin() + start, tokens.begin() + start + n);
        session.reset();
        session.forward(ids.data(), n, /*all_logits=*/true);
        double nll = 0;
        for (int t = 0; t < n; ++t) {
            const int target = tokens[start + t + 1];
            nll += nll_of(session.logits() + static_cast<size_t>(t) * cfg.vocab, cfg.vocab, target);
            r.bytes += static_cast<int64_t>(tokenizer.token_bytes(target).size());
        }
        if (!std::isfinite(nll))
            throw Error("the loss is NaN/inf in the window from token " + std::to_string(start) +
                        ": the model's numbers overflow");
        r.nll_sum += nll;
        r.tokens += n;
        r.windows += 1;
        start += n;
    }
    return r;
}

}  // namespace

EvalResult evaluate(const ModelConfig& cfg, const float* weights,
                    const std::vector<int32_t>& tokens, const Tokenizer& tokenizer, int batch,
                    int64_t max_tokens) {
    return evaluate(ModelWeights::from_f32(cfg, weights), tokens, tokenizer, batch, max_tokens);
}

EvalResult evaluate(const ModelWeights& weights, const std::vector<int32_t>& tokens,
                    const Tokenizer& tokenizer, int batch, int64_t max_tokens) {
    const ModelConfig& cfg = weights.config();
    if (batch < 1) throw Error("the evaluation batch must be at least 1");
    check_text(tokens.size());
    int64_t predictions = static_cast<int64_t>(tokens.size()) - 1;
    if (max_tokens > 0) predictions = std::min(predictions, max_tokens);
    const int T = static_cast<int>(std::min<int64_t>(cfg.ctx, predictions));
    if (!weights.f32_base()) return evaluate_stored(weights, tokens, tokenizer, predictions, T);
    // f32: batches of windows through the model's batched forward.
    Model model(cfg, weights.f32_base());
    EvalResult r;
    std::vector<int> inputs, targets;
    // Window w predicts tokens[w·T + 1 .. w·T + len]; the last one may be shorter.
    for (int64_t start = 0; start < predictions;) {
        int rows = 0, len = 0;
        inputs.clear();
        targets.clear();
        while (rows < batch && start < predictions) {
            const int n = static_cast<int>(std::min<int64_t>(T, predictions - start));
            if (rows > 0 && n != len) break;  // a shorter last window runs on its own
            len = n;
            for (int t = 0; t < n; ++t) {
                inputs.push_back(tokens[start + t]);
                targets.push_back(tokens[start + t + 1]);
            }
            start += n;
            ++rows;
        }
        const ForwardResult f = model.forward(inputs.data(), targets.data(), rows, len);
        if (!std::isfinite(f.ce))
            throw Error("the loss is NaN/inf in the windows from token " +
                        std::to_string(start - static_cast<int64_t>(rows) * len) +
                        ": the model's numbers overflow");
        const int64_t n = static_cast<int64_t>(rows) * len;
        r.nll_sum += f.ce * static_cast<double>(n);
        r.aux_sum += f.aux * static_cast<double>(n);
        r.z_sum += f.z * static_cast<double>(n);
        r.tokens += n;
        r.windows += rows;
        for (int id : targets) r.bytes += static_cast<int64_t>(tokenizer.token_bytes(id).size());
    }
    return r;
}

std::vector<double> next_token_logprobs(const ModelConfig& cfg, const float* weights,
                                        const std::vector<int32_t>& tokens) {
    return next_token_logprobs(ModelWeights::from_f32(cfg, weights), tokens);
}

std::vector<double> next_token_logprobs(const ModelWeights& weights,
                                        const std::vector<int32_t>& tokens) {
    const ModelConfig& cfg = weights.config();
    if (tokens.size() < 2)
        throw Error("the text has " + std::to_string(tokens.size()) +
                    " token(s); scoring needs at least 2");
    if (tokens.size() > static_cast<size_t>(cfg.ctx))
        throw Error("per-position scores need the text in one window: it has " +
                    std::to_string(tokens.size()) + " tokens, the context " +
                    std::to_string(cfg.ctx));
    InferenceSession session(weights);
    const std::vector<int> ids(tokens.begin(), tokens.end());
    const int n = static_cast<int>(ids.size()) - 1;
    session.forward(ids.data(), n, /*all_logits=*/true);
    const float* logits = session.logits();
    std::vector<double> out(static_cast<size_t>(n));
    for (int t = 0; t < n; ++t) {
        out[t] = -nll_of(logits + static_cast<size_t>(t) * cfg.vocab, cfg.vocab, ids[t + 1]);
        if (!std::isfinite(out[t]))
            throw Error("the log-probability at position " + std::to_string(t) +
                        " is NaN/inf: the model's numbers overflow");
    }
    return out;
}

}  // namespace tinygpt
