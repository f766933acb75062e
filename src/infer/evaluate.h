// Scoring a text: the model's next-token negative log-likelihood over non-overlapping windows of
// ctx tokens that cover the text (or its first max_tokens predictions). A text shorter than the
// context is one window of all its tokens, so cross_entropy() is then exactly the mean NLL of
// every next token of the text.
#pragma once
#include <cstdint>
#include <vector>

#include "model/config.h"
#include "model/model_weights.h"

namespace tinygpt {

class Tokenizer;

struct EvalResult {
    double nll_sum = 0;  // nats, over the scored predictions
    int64_t tokens = 0;  // predictions scored
    int64_t bytes = 0;   // bytes of text the predicted tokens stand for
    int windows = 0;
    double aux_sum = 0, z_sum = 0;  // token-weighted router statistics (MoE models)
    double cross_entropy() const { return tokens ? nll_sum / tokens : 0; }  // nats per token
    double bits_per_byte() const;  // Σ NLL / ln 2 / bytes: byte and BPE models compare
    double perplexity() const;     // per token
    double aux() const { return tokens ? aux_sum / tokens : 0; }
    double z() const { return tokens ? z_sum / tokens : 0; }
};

// `batch` windows run per forward; max_tokens = 0 scores the whole text. Throws Error for fewer
// than 2 tokens.
// f32 weights run in batches of windows through the model's forward; weights stored in another
// type run window by window through the inference path (batch is then unused).
EvalResult evaluate(const ModelWeights& weights, const std::vector<int32_t>& tokens,
                    const Tokenizer& tokenizer, int batch, int64_t max_tokens);
EvalResult evaluate(const ModelConfig& cfg, const float* weights,
                    const std::vector<int32_t>& tokens, const Tokenizer& tokenizer, int batch,
                    int64_t max_tokens);

// The log-probability of each next token of `tokens` given those before it (size − 1 values),
// from one causal pass through the inference path (the numbers a peer such as llama.cpp reports
// per position). The text must fit the context: Error otherwise.
std::vector<double> next_token_logprobs(const ModelWeights& weights,
                                        const std::vector<int32_t>& tokens);
std::vector<double> next_token_logprobs(const ModelConfig& cfg, const float* weights,
                                        const std::vector<int32_t>& tokens);

}  // namespace tinygpt
