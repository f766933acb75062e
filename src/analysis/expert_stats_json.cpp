#include "analysis/expert_stats_json.h"

#include <cmath>

namespace tinygpt {

namespace {

using nlohmann::json;

// [n·n] row-major as an array of n rows.
json square_matrix(const std::vector<int64_t>& values, int n) {
    json rows = json::array();
    for (int i = 0; i < n; ++i)
        rows.push_back(std::vector<int64_t>(values.begin() + static_cast<size_t>(i) * n,
                                            values.begin() + static_cast<size_t>(i + 1) * n));
    return rows;
}

json byte_class_names() {
    json names = json::array();
    for (int c = 0; c < kByteClassCount; ++c) names.push_back(byte_class_name(ByteClass(c)));
    return names;
}

json layer_json(const ExpertLayerStats& s, const ExpertStats& stats, const Tokenizer& tokenizer) {
    const int E = s.experts();
    json mean_gate = json::array(), mean_prob = json::array(), top_tokens = json::array(),
         classes = json::array();
    for (int e = 0; e < E; ++e) {
        const double gate = s.mean_gate(e);
        mean_gate.push_back(std::isnan(gate) ? json(nullptr) : json(gate));
        mean_prob.push_back(s.mean_prob(e));
        json tokens = json::array();
        for (const TokenCount& t : s.top_tokens[e])
            tokens.push_back({{"id", t.id},
                              {"text", printable_piece(tokenizer.token_bytes(t.id))},
                              {"count", t.count},
                              {"share_of_token", t.share_of_token}});
        top_tokens.push_back(std::move(tokens));
        classes.push_back(s.byte_classes[e]);
    }
    json out = {{"layer", s.layer},
                {"tokens", s.rows},
                {"load", s.load()},
                {"assignments", s.assignments},
                {"top1_load", s.top1_share()},
                {"mean_gate", std::move(mean_gate)},
                {"mean_prob", std::move(mean_prob)},
                {"router_entropy", s.router_entropy()},
                {"load_entropy", s.load_entropy()},
                {"max_entropy", std::log(static_cast<double>(E))},
                {"never_chosen", s.never_chosen()},
                {"rarely_chosen", s.rarely_chosen(stats.rare_threshold())},
                {"coselection", square_matrix(s.coselection, E)},
                {"byte_classes", std::move(classes)},
                {"top_tokens", std::move(top_tokens)}};
    if (s.next)
        out["next_layer"] = {{"layer", s.next->to_layer},
                             {"nmi", s.next->nmi},
                             {"follow", s.next->follow},
                             {"follow_baseline", s.next->follow_baseline},
                             {"top1_joint", square_matrix(s.next->joint, E)}};
    return out;
}

json passage_json(const ExpertStats& stats, const Tokenizer& tokenizer) {
    const RoutedPassage& p = stats.passage;
    const size_t K = stats.topk;
    json text = json::array(), layers = json::array();
    for (const int id : p.ids) text.push_back(printable_piece(tokenizer.token_bytes(id)));
    for (size_t m = 0; m < stats.layers.size(); ++m) {
        json experts = json::array(), gates = json::array();
        for (size_t t = 0; t < p.ids.size(); ++t) {
            experts.push_back(
                std::vector<int>(p.topk[m].begin() + t * K, p.topk[m].begin() + (t + 1) * K));
            gates.push_back(
                std::vector<float>(p.gates[m].begin() + t * K, p.gates[m].begin() + (t + 1) * K));
        }
        layers.push_back(
            {{"layer", stats.layers[m].layer}, {"experts", experts}, {"gates", gates}});
    }
    return {{"ids", p.ids}, {"text", std::move(text)}, {"layers", std::move(layers)}};
}

}  // namespace

nlohmann::json expert_stats_json(const ExpertStats& stats, const Tokenizer& tokenizer) {
    json layers = json::array();
    for (const ExpertLayerStats& s : stats.layers)
        layers.push_back(layer_json(s, stats, tokenizer));
    return {{"experts", stats.experts},
            {"topk", stats.topk},
            {"gates_renormalized", stats.renormalized},
            {"tokens", stats.tokens},
            {"windows", stats.windows},
            {"rare_threshold", stats.rare_threshold()},
            {"byte_class_names", byte_class_names()},
            {"text_byte_classes", stats.text_classes},
            {"layers", std::move(layers)},
            {"passage", passage_json(stats, tokenizer)}};
}

}  // namespace tinygpt
