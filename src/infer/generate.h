// Text generation: prefill the prompt, then decode token by token with the KV cache (or, with
// use_cache = false, recompute the whole sequence through the training forward every step, for
// checking). Tokens stream out through a callback; timings come back for reports and benchmarks.
//
// Past the context, the window slides (unless stop_at_context): the first `keep` tokens stay,
// older ones are dropped, and what remains is computed again from position 0. Learned positions
// (GPT family) slide one token at a time, as the original does: every token past the context
// sees exactly the last ctx tokens. RoPE models drop half of the slidable window at once and
// refill the cache once per ctx/2 tokens (llama.cpp's context shift discards the same tokens; we
// recompute rather than rotate the cached keys, so the numbers are those of a fresh prompt).
// The cached and the recomputing paths slide alike, so they give the same greedy text.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "infer/sampler.h"
#include "infer/session.h"
#include "model/config.h"
#include "model/model_weights.h"

namespace tinygpt {

struct GenerateOptions {
    int max_new_tokens = 200;
    SamplingOptions sampling;
    uint64_t seed = 42;
    bool use_cache = true;
    int stop_token = -1;   // the tokenizer's end-of-text id: generation ends there (not emitted)
    int sample_vocab = 0;  // draw only ids below this (the tokenizer's size: padded vocabularies
                           // have rows no token stands for); 0 = the whole vocabulary
    bool stop_at_context = false;  // end when the context is full instead of sliding
    int keep = 0;  // tokens at the start of the prompt that stay when the window slides
    // Threads of a decode step: 0 = chosen by timing, from 1 to num_threads() or
    // decode_thread_limit, the larger (ThreadTuner; a decode step gives the same bits on any
    // count); N = always N. The prompt and the slides run on num_threads().
    int decode_threads = 0;
    // With decode_threads 0: the most threads the timing may try, when more than num_threads().
    // The CLI sets the cores of the machine here when other work at start made it run the
    // prompt on fewer: the load may have been spread over every core (then more threads win
    // more of the machine) or may change, and the timing finds out, step by step.
    int decode_thread_limit = 0;
    // With the cache, every forward (the prompt's, each decode step's, a slide's) reports its
    // routing here before its next token is drawn: the last row's decisions are those of the
    // position whose logits give that token. Not called on the recomputing path.
    RouterObserver routing;
    // Asked after each emitted token: false ends the generation there (a page's Stop button).
    std::function<bool()> keep_going;
    // With the cache: a session of these same weights to run in (reset first) instead of a new
    // one, so that its activations and KV cache, allocated by an earlier call, are not
    // allocated, zero-filled and faulted in again (`bench`'s runs, as llama-bench reuses its
    // context). Null: a new session. Error when it runs other weights.
    InferenceSession* session = nullptr;
};

struct GenerateStats {
    int prompt_tokens = 0;
    int generated = 0;
    bool hit_context = false;  // stopped because the context is full (stop_at_context)
    int slides = 0;            // times the window slid past the context
    bool hit_stop = false;     // stopped at the end-of-text token
    double ttft_ms = 0;        // start → first generated token (prefill included)
    double total_ms = 0;
    std::vector<double> itl_ms;  // time of each decoded token after the first
    int decode_threads = 0;      // the decode steps' thread count at the end
    double prefill_tok_per_s() const { return ttft_ms > 0 ? prompt_tokens / (ttft_ms / 1e3) : 0; }
    double decode_tok_per_s() const;  // tokens after the first / their time
};

// Throws tinygpt::Error for an empty or too long prompt, bad sampling options, or a `keep` that
// leaves no room to slide (keep must be < ctx − 1).
GenerateStats generate(const ModelWeights& weights, const std::vector<int>& prompt,
                       const GenerateOptions& options, const std::function<void(int)>& on_token);
// f32 weights in ParameterLayout(cfg) order.
GenerateStats generate(const ModelConfig& cfg, const float* weights, const std::vector<int>& prompt,
                       const GenerateOptions& options, const std::function<void(int)>& on_token);

std::vector<int> bytes_to_tokens(const std::string& text);

class Tokenizer;
// Greedy continuation of `prompt` by up to `new_tokens` tokens (fewer at the context's end or
// the end-of-text token), decoded to text; for the trainer's inline samples.
std::string generate_greedy_text(const ModelConfig& cfg, const float* weights,
                                 const Tokenizer& tokenizer, const std::string& prompt,
                                 int new_tokens);

}  // namespace tinygpt
