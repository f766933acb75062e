// expert_page() of report/expert_report.h: the page around the figures.
#include <cmath>

#include "analysis/token_text.h"
#include "report/expert_report.h"
#include "report/html.h"

namespace tinygpt::report {

namespace {

std::string expert_list(const std::vector<int>& experts) {
    if (experts.empty()) return "none";
    std::string out;
    for (const int e : experts) out += (out.empty() ? "" : ", ") + std::to_string(e);
    return out;
}

void summary_table(HtmlPage& page, const ExpertStats& stats) {
    std::vector<std::vector<std::string>> rows;
    for (const ExpertLayerStats& s : stats.layers) {
        const bool next = s.next.has_value();
        rows.push_back({std::to_string(s.layer), format_number(s.router_entropy()),
                        format_number(s.load_entropy()), expert_list(s.never_chosen()),
                        expert_list(s.rarely_chosen(stats.rare_threshold())),
                        next ? std::to_string(s.next->to_layer) : "–",
                        next ? format_number(s.next->nmi) : "–",
                        next ? format_percent(s.next->follow) + " (" +
                                   format_percent(s.next->follow_baseline) + ")"
                             : "–"});
    }
    page.table({"layer", "router entropy (nats)", "load entropy (nats)", "never chosen",
                "rarely chosen", "next MoE layer", "NMI", "follow (baseline)"},
               rows, {true, true, true, false, false, true, true, true});
}

void expert_table(HtmlPage& page, const ExpertLayerStats& s, const Tokenizer& tokenizer) {
    const std::vector<double> load = s.load(), top1 = s.top1_share();
    std::vector<std::vector<std::string>> rows;
    for (int e = 0; e < s.experts(); ++e) {
        std::string tokens;
        for (const TokenCount& t : s.top_tokens[e]) {
            if (!tokens.empty()) tokens += " · ";
            tokens += quoted_piece(tokenizer.token_bytes(t.id)) + " " + std::to_string(t.count) +
                      " (" + format_percent(t.share_of_token) + ")";
        }
        rows.push_back({std::to_string(e), format_percent(load[e]), format_percent(top1[e]),
                        format_number(s.mean_gate(e)), format_number(s.mean_prob(e)), tokens});
    }
    page.table({"expert", "load", "top-1", "mean gate", "mean probability",
                "tokens it takes most often: count (share of that token's occurrences)"},
               rows, {true, true, true, true, true, false});
}

void definitions(HtmlPage& page, const ExpertStats& stats) {
    page.heading(2, "Definitions");
    for (const char* text : {
             "Load share: the fraction of the (token, slot) assignments that go to an expert; "
             "each token makes K assignments, so the shares of a layer sum to 1.",
             "Top-1: the fraction of tokens whose first choice the expert is.",
             "Mean gate: the mean of the gate weights an expert receives when chosen, as the "
             "model computes them (renormalised over the top-K, or the router probabilities).",
             "Mean probability: the router's softmax probability of the expert, averaged over all "
             "tokens (chosen or not).",
             "Router entropy: the mean over tokens of the entropy of the router's softmax over "
             "all E experts, in nats (at most ln E: a router that cannot decide). Load entropy: "
             "the entropy of the load shares (ln E when perfectly balanced).",
             "Never chosen: no assignment in the text. Rarely chosen: a load share above 0 but "
             "below 1/(10E).",
             "NMI: the mutual information of the top-1 experts of two consecutive MoE layers, "
             "divided by the geometric mean of their entropies (1: one determines the other; 0: "
             "independent). Follow: the fraction of tokens whose next top-1 expert is the most "
             "common one for their top-1 expert here; the baseline always guesses the next "
             "layer's most common expert.",
             "Byte class: the class of the token's first byte that is not whitespace (upper, "
             "lower, digit, punct, non-ascii, other); a token of whitespace only is newline when "
             "it holds a line break, else space.",
         })
        page.paragraph(text);
    page.paragraph("Rare threshold here: " + format_percent(stats.rare_threshold()) + ".");
}

}  // namespace

std::string expert_page(const ExpertStats& stats, const Tokenizer& tokenizer,
                        const ExpertPageInfo& info, const ExpertFigures& figures) {
    HtmlPage page("tinygpt experts: " + info.model);
    page.heading(1, "Inside the experts of " + info.model);
    page.paragraph(info.description);
    page.paragraph("Text: " + info.corpus + ", " + std::to_string(stats.tokens) + " tokens in " +
                   std::to_string(stats.windows) + " windows of up to " + std::to_string(info.ctx) +
                   ". " + std::to_string(stats.layers.size()) + " MoE layers of " +
                   std::to_string(stats.experts) + " experts, top-" + std::to_string(stats.topk) +
                   ", gates " +
                   (stats.renormalized ? "renormalised over the top-K" : "not renormalised") +
                   ". Layers are numbered from 0, dense layers skipped.");
    page.heading(2, "Overview");
    for (const Figure& f : figures.overview) page.figure(f);
    summary_table(page, stats);
    page.heading(2, "Layers");
    for (size_t m = 0; m < stats.layers.size(); ++m) {
        const ExpertLayerStats& s = stats.layers[m];
        page.begin_section("Layer " + std::to_string(s.layer), m == 0);
        expert_table(page, s, tokenizer);
        for (const Figure& f : figures.layers[m]) page.figure(f);
        page.end_section();
    }
    definitions(page, stats);
    return page.str();
}

}  // namespace tinygpt::report
