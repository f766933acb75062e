// What a command will hold in memory, by buffer kind, computed from the model's shape before
// anything is allocated, so that a run that cannot fit is refused at once instead of growing
// until the system kills it. The numbers follow the code's real buffers: the parameter layout
// (weights, gradients, both AdamW moments), the model's activation arena (Model::reserve, the
// blocks' and the MoE layers' layouts), the KV-cache session, the batches. Sizes are doubles,
// so an absurd shape gives an absurd number, never an overflow. tests/test_memory_estimate.cpp
// checks them against the arenas' own measurements and against the peak RSS of real runs.
#pragma once
#include <string>
#include <vector>

#include "model/config.h"

namespace tinygpt {

struct MemoryItem {
    std::string kind;  // "weights", "gradients", "AdamW moments", "activations", "KV cache", …
    double bytes = 0;
};

struct MemoryEstimate {
    std::vector<MemoryItem> items;  // in the order they are reported; no kind twice

    void add(const std::string& kind, double bytes);  // adds to the kind's item (or a new one)
    double total_bytes() const;
    double bytes_of(const std::string& kind) const;  // 0 when absent
    // "weights 1.6 MiB · gradients 1.6 MiB · … · activations 47 MiB": items of 0 bytes left out.
    std::string breakdown() const;
};

// One parameter-sized buffer (ParameterLayout(cfg).total() floats, alignment padding included):
// the weights, and again each of the gradients and the two AdamW moments.
// With expert_parallel P > 1: one rank's buffer, which holds E/P of each MoE layer's experts.
double parameter_buffer_bytes(const ModelConfig& cfg, int expert_parallel = 1);

// The activation arena Model::reserve(batch, tokens) allocates, by kind: "activations" (what
// the forward saves for the backward), "logits", "batch" (token ids) and "backward scratch".
MemoryEstimate model_arena_estimate(const ModelConfig& cfg, double batch, double tokens);

struct TrainingMemoryPlan {
    int batch = 16;                // micro-batch; windows are ctx tokens
    int sample_prompt_tokens = 0;  // the inline greedy samples (0 tokens = none)
    int sample_tokens = 0;
    double loaded_file_bytes = 0;  // --resume / --init-from: the file held while copying it
    double corpus_tokens = 0;      // the corpus as token ids (int32 each)
    int expert_parallel = 1;       // > 1: one rank of an expert-parallel group (its experts only)
};

// `train` and `bench-train`: weights, gradients, AdamW moments, the model arena for
// [batch, ctx], the trainer's batch buffers, the inline samples' KV-cache session, the loaded
// file and the corpus. `cfg` must be valid (ModelConfig::validate).
MemoryEstimate estimate_training(const ModelConfig& cfg, const TrainingMemoryPlan& plan);

// `eval`: the weights (mapped or loaded), the model arena for [windows_per_forward,
// window_tokens] but its backward scratch (an inference forward never touches it) and the
// evaluation's input/target buffers.
// stored_weight_bytes > 0: weights stored in another type than f32 (ModelWeights::stored_bytes),
// which evaluate() runs window by window through an inference session instead.
MemoryEstimate estimate_evaluation(const ModelConfig& cfg, double windows_per_forward,
                                   int window_tokens, double stored_weight_bytes = 0);

// `eval --per-token`: the weights and one KV-cache session over `tokens` positions with the
// logits of every position.
MemoryEstimate estimate_scoring(const ModelConfig& cfg, int tokens, double stored_weight_bytes = 0);

struct GenerationMemoryPlan {
    int prompt_tokens = 1;
    int new_tokens = 0;
    bool use_cache = true;         // false: the recomputing path (a model arena for [1, ctx])
    bool stop_at_context = false;  // else the window slides past the context
    int keep = 0;                  // prompt tokens pinned when it slides
    // > 0: the weights' bytes as stored in another type than f32 (ModelWeights::stored_bytes);
    // the recomputing path then runs through the session too.
    double stored_weight_bytes = 0;
};

// `sample` and `bench`: the weights and the KV-cache session (its cache grows with the
// positions, its scratch with the largest chunk fed at once), or the recomputing model.
MemoryEstimate estimate_generation(const ModelConfig& cfg, const GenerationMemoryPlan& plan);

// Bytes a command may use: what the system has available, or a limit the user set.
struct MemoryBudget {
    double bytes = 0;    // 0 = unknown: nothing is checked
    std::string source;  // "MemAvailable", "cgroup v2 memory.max", "--max-memory", …
    bool user_limit = false;
};

// What this process can still take (util/memory_available.h) as a budget: no user limit.
MemoryBudget available_memory_budget();

// Throws tinygpt::Error with one line: the estimate and its breakdown, the memory available
// (or the limit) and `advice` (what to change), when the estimate exceeds the budget.
void require_fits(const MemoryEstimate& estimate, const MemoryBudget& budget,
                  const std::string& advice);

}  // namespace tinygpt
