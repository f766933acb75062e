// Gathering ExpertStats (analysis/expert_stats.h) from the routing an inference session reports
// (infer/session.h's RouterObserver) while it runs a text window by window: the counts are
// accumulated as each MoE block routes, so nothing is kept per token but the passage shown
// token by token and the previous MoE block's top-1 choices of the current window.
#pragma once
#include <cstdint>
#include <unordered_map>
#include <vector>

#include "analysis/expert_stats.h"
#include "infer/inference_ffn.h"
#include "model/config.h"
#include "model/model_weights.h"
#include "tokenizer/tokenizer.h"

namespace tinygpt {

struct ExpertStatsOptions {
    int top_tokens = 10;       // tokens listed per expert
    int passage_tokens = 200;  // the first tokens of the text kept for the token-by-token view
    int64_t max_tokens = 0;    // route at most this many tokens from the start (0 = all)
};

class ExpertStatsRecorder {
  public:
    // Throws Error("model has no MoE layer") for a dense model. `tokenizer` (for the byte
    // classes) must outlive the recorder.
    ExpertStatsRecorder(const ModelConfig& cfg, const Tokenizer& tokenizer,
                        const ExpertStatsOptions& options);

    // The token ids of the rows the next forward routes (the next window of the text).
    void begin_window(const int* ids, int n);
    // One MoE block's routing of the current window (blocks in order).
    void observe(int layer, const RouterDecisions& d);
    ExpertStats finish() const;

  private:
    struct LayerCounts {
        ExpertLayerStats stats;
        std::unordered_map<int64_t, int64_t> token_expert;  // id·E + e → assignments
    };
    ByteClass class_of(int id);

    const Tokenizer& tokenizer_;
    ExpertStatsOptions options_;
    int E_, K_;
    bool renormalized_;
    std::vector<int> moe_index_;  // per block: its index among the MoE blocks, or -1
    std::vector<LayerCounts> layers_;
    std::vector<int8_t> class_cache_;               // per id, −1 until classified
    std::unordered_map<int, int64_t> occurrences_;  // id → times it occurs in the text
    ByteClassCounts text_classes_{};
    RoutedPassage passage_;
    std::vector<int> window_;  // the current window's ids
    int64_t window_start_ = 0, tokens_ = 0;
    int windows_ = 0;
    std::vector<int> prev_top1_;  // top-1 of the previous MoE block in this window
    int prev_moe_ = -1;           // its MoE index, −1 when none yet
};

// Routes the text (windows of ctx tokens, each through a fresh KV cache, as eval scores it)
// through the inference path and gathers the statistics.
ExpertStats collect_expert_stats(const ModelWeights& weights, const std::vector<int32_t>& tokens,
                                 const Tokenizer& tokenizer, const ExpertStatsOptions& options);

}  // namespace tinygpt
