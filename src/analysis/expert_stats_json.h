// ExpertStats as the JSON object of `tinygpt experts --json` (docs/EXPERTS.md lists its keys):
// one object per MoE layer with `layer` and `load` (the experts' shares, summing to 1) beside
// the other statistics. Token texts are printable_piece()s, so the JSON is always valid UTF-8.
#pragma once
#include <nlohmann/json.hpp>

#include "analysis/expert_stats.h"
#include "tokenizer/tokenizer.h"

namespace tinygpt {

nlohmann::json expert_stats_json(const ExpertStats& stats, const Tokenizer& tokenizer);

}  // namespace tinygpt
