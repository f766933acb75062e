// Text generation: prefill the prompt, then decode token by token with the KV cache (or, with
// use_cache = false, recompute the whole sequence through the training forward every step, for
// checking). Tokens stream out through a callback; timings come back for reports and benchmarks.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "infer/sampler.h"
#include "model/config.h"

namespace tinygpt {

struct GenerateOptions {
    int max_new_tokens = 200;
    SamplingOptions sampling;
    uint64_t seed = 42;
    bool use_cache = true;
};

struct GenerateStats {
    int prompt_tokens = 0;
    int generated = 0;
    bool hit_context = false;  // stopped because the context is full
    double ttft_ms = 0;        // start → first generated token (prefill included)
    double total_ms = 0;
    std::vector<double> itl_ms;  // time of each decoded token after the first
    double prefill_tok_per_s() const { return ttft_ms > 0 ? prompt_tokens / (ttft_ms / 1e3) : 0; }
    double decode_tok_per_s() const;  // tokens after the first / their time
};

// Throws tinygpt::Error for an empty or too long prompt or bad sampling options.
GenerateStats generate(const ModelConfig& cfg, const float* weights, const std::vector<int>& prompt,
                       const GenerateOptions& options, const std::function<void(int)>& on_token);

std::vector<int> bytes_to_tokens(const std::string& text);

}  // namespace tinygpt
