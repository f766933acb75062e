#include "report/expert_report.h"

#include <cmath>
#include <cstdio>
#include <limits>

#include "analysis/token_text.h"
#include "report/charts.h"
#include "report/html.h"
#include "report/token_strip.h"

namespace tinygpt::report {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

std::string layer_name(int layer) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "layer%02d", layer);
    return buf;
}

std::vector<std::string> expert_labels(int E) {
    std::vector<std::string> labels;
    for (int e = 0; e < E; ++e) labels.push_back(std::to_string(e));
    return labels;
}

Figure load_overview(const ExpertStats& stats) {
    Heatmap h;
    h.title = "Load share of each expert, by MoE layer";
    h.x_label = "expert";
    h.y_label = "layer";
    h.rows = static_cast<int>(stats.layers.size());
    h.cols = stats.experts;
    h.col_labels = expert_labels(stats.experts);
    h.percent = true;
    h.scale_label = "share of (token, slot) assignments";
    for (const ExpertLayerStats& s : stats.layers) {
        h.row_labels.push_back("layer " + std::to_string(s.layer));
        const std::vector<double> load = s.load();
        for (int e = 0; e < stats.experts; ++e) {
            h.values.push_back(load[e]);
            h.tooltips.push_back("layer " + std::to_string(s.layer) + ", expert " +
                                 std::to_string(e) + ": " + format_percent(load[e]) + " (" +
                                 std::to_string(s.assignments[e]) + " assignments)");
        }
    }
    return {"load_by_layer",
            "Each row is one MoE layer; a balanced layer is one even colour at 1/E = " +
                format_percent(1.0 / stats.experts) + ".",
            render(h)};
}

Figure summary_by_layer(const ExpertStats& stats) {
    const double max_entropy = std::log(static_cast<double>(stats.experts));
    LineChart c;
    c.title = "Routing by MoE layer";
    c.x_label = "layer";
    c.y_label = "fraction";
    c.y_range = std::make_pair(0.0, 1.0);
    LineSeries router{"router entropy / ln E", {}, {}}, load{"load entropy / ln E", {}, {}},
        nmi{"NMI with next MoE layer", {}, {}}, follow{"top-1 follow rate", {}, {}};
    for (const ExpertLayerStats& s : stats.layers) {
        for (LineSeries* series : {&router, &load, &nmi, &follow}) series->x.push_back(s.layer);
        router.y.push_back(max_entropy > 0 ? s.router_entropy() / max_entropy : kNaN);
        load.y.push_back(max_entropy > 0 ? s.load_entropy() / max_entropy : kNaN);
        nmi.y.push_back(s.next ? s.next->nmi : kNaN);
        follow.y.push_back(s.next ? s.next->follow : kNaN);
    }
    c.series = {router, load, nmi, follow};
    return {"summary_by_layer",
            "Entropies as a fraction of their maximum ln E; agreement of each MoE layer's top-1 "
            "choice with the next MoE layer's (docs/EXPERTS.md).",
            render(c)};
}

Figure layer_load(const ExpertStats& stats, const ExpertLayerStats& s) {
    const std::vector<double> load = s.load(), top1 = s.top1_share();
    BarChart b;
    b.title = "Layer " + std::to_string(s.layer) + ": load share per expert";
    b.x_label = "expert";
    b.y_label = "share of assignments";
    b.percent = true;
    b.labels = expert_labels(s.experts());
    b.values = load;
    for (int e = 0; e < s.experts(); ++e) {
        b.colours.push_back(category_colour(e, s.experts()));
        const double gate = s.mean_gate(e);
        b.tooltips.push_back("expert " + std::to_string(e) + ": load " + format_percent(load[e]) +
                             ", top-1 " + format_percent(top1[e]) + ", mean gate " +
                             format_number(gate) + ", mean probability " +
                             format_number(s.mean_prob(e)));
    }
    b.lines = {{1.0 / s.experts(), "balanced 1/E", "#555555"},
               {stats.rare_threshold(), "rare below 1/(10E)", "#d62728"}};
    return {layer_name(s.layer) + "_load",
            "Share of the (token, slot) assignments each expert receives; bars sum to 100%.",
            render(b)};
}

Figure layer_coselection(const ExpertLayerStats& s) {
    const int E = s.experts();
    Heatmap h;
    h.title = "Layer " + std::to_string(s.layer) + ": experts chosen together";
    h.x_label = h.y_label = "expert";
    h.rows = h.cols = E;
    h.row_labels = h.col_labels = expert_labels(E);
    h.percent = true;
    h.scale_label = "share of tokens choosing both";
    for (int a = 0; a < E; ++a)
        for (int b = 0; b < E; ++b) {
            const int64_t count = s.coselection[static_cast<size_t>(a) * E + b];
            const double share = static_cast<double>(count) / static_cast<double>(s.rows);
            // The diagonal (tokens choosing a) would swamp the pairs: grey, in the tooltip only.
            h.values.push_back(a == b ? kNaN : share);
            h.tooltips.push_back(a == b ? "expert " + std::to_string(a) + " chosen by " +
                                              std::to_string(count) + " tokens"
                                        : "experts " + std::to_string(a) + " and " +
                                              std::to_string(b) +
                                              " together: " + std::to_string(count) + " tokens (" +
                                              format_percent(share) + ")");
        }
    return {layer_name(s.layer) + "_coselection",
            "How often two experts are in the same token's top-K (symmetric; the diagonal is "
            "left grey).",
            render(h)};
}

Figure layer_byte_classes(const ExpertStats& stats, const ExpertLayerStats& s) {
    const int E = s.experts();
    Heatmap h;
    h.title = "Layer " + std::to_string(s.layer) + ": what each expert's tokens start with";
    h.x_label = "byte class";
    h.y_label = "expert";
    h.rows = E + 1;
    h.cols = kByteClassCount;
    h.percent = true;
    h.scale_label = "share of the row's tokens";
    for (int c = 0; c < kByteClassCount; ++c) h.col_labels.push_back(byte_class_name(ByteClass(c)));
    auto add_row = [&](const std::string& name, const ByteClassCounts& counts) {
        h.row_labels.push_back(name);
        int64_t total = 0;
        for (const int64_t n : counts) total += n;
        for (int c = 0; c < kByteClassCount; ++c) {
            const double share = total > 0 ? static_cast<double>(counts[c]) / total : kNaN;
            h.values.push_back(share);
            h.tooltips.push_back(name + ", " + byte_class_name(ByteClass(c)) + ": " +
                                 std::to_string(counts[c]) + " (" + format_percent(share) + ")");
        }
    };
    for (int e = 0; e < E; ++e) add_row("expert " + std::to_string(e), s.byte_classes[e]);
    add_row("whole text", stats.text_classes);
    return {layer_name(s.layer) + "_byte_classes",
            "Each expert's assignments by the class of the token's first non-space byte; the "
            "last row is the text itself, for comparison.",
            render(h)};
}

Figure layer_transition(const ExpertLayerStats& s) {
    const int E = s.experts();
    const LayerAgreement& a = *s.next;
    Heatmap h;
    h.title = "Top-1 expert at layer " + std::to_string(s.layer) + " → layer " +
              std::to_string(a.to_layer) + " (NMI " + format_number(a.nmi) + ", follow " +
              format_percent(a.follow) + ")";
    h.x_label = "top-1 expert at layer " + std::to_string(a.to_layer);
    h.y_label = "top-1 expert at layer " + std::to_string(s.layer);
    h.rows = h.cols = E;
    h.row_labels = h.col_labels = expert_labels(E);
    h.percent = true;
    h.scale_label = "share of the row's tokens";
    for (int i = 0; i < E; ++i) {
        int64_t row = 0;
        for (int j = 0; j < E; ++j) row += a.joint[static_cast<size_t>(i) * E + j];
        for (int j = 0; j < E; ++j) {
            const int64_t count = a.joint[static_cast<size_t>(i) * E + j];
            const double share = row > 0 ? static_cast<double>(count) / row : kNaN;
            h.values.push_back(share);
            h.tooltips.push_back(std::to_string(i) + " → " + std::to_string(j) + ": " +
                                 std::to_string(count) + " tokens (" + format_percent(share) +
                                 " of row)");
        }
    }
    return {layer_name(s.layer) + "_to_" + layer_name(a.to_layer),
            "Where the tokens of each top-1 expert go next; one bright cell per row means the "
            "next layer's choice follows from this one's.",
            render(h)};
}

Figure layer_passage(const ExpertStats& stats, size_t m, const Tokenizer& tokenizer) {
    const ExpertLayerStats& s = stats.layers[m];
    const RoutedPassage& p = stats.passage;
    const size_t K = stats.topk;
    TokenStrip strip;
    strip.title = "Layer " + std::to_string(s.layer) + ": the text coloured by top-1 expert";
    for (int e = 0; e < stats.experts; ++e)
        strip.categories.push_back("expert " + std::to_string(e));
    for (size_t t = 0; t < p.ids.size(); ++t) {
        const std::string& bytes = tokenizer.token_bytes(p.ids[t]);
        strip.pieces.push_back(printable_piece(bytes));
        strip.category.push_back(p.topk[m][t * K]);
        strip.break_after.push_back(bytes.find('\n') != std::string::npos);
        std::string tip = quoted_piece(bytes) + " (id " + std::to_string(p.ids[t]) + ") →";
        for (size_t k = 0; k < K; ++k)
            tip += " expert " + std::to_string(p.topk[m][t * K + k]) + " (gate " +
                   format_number(p.gates[m][t * K + k]) + ")";
        strip.tooltips.push_back(std::move(tip));
    }
    return {layer_name(s.layer) + "_passage",
            "The first " + std::to_string(p.ids.size()) +
                " tokens of the text, each on its top-1 expert's colour (the tooltip lists the "
                "top-K and their gates).",
            render(strip)};
}

}  // namespace

std::vector<Figure> ExpertFigures::all() const {
    std::vector<Figure> out = overview;
    for (const auto& layer : layers) out.insert(out.end(), layer.begin(), layer.end());
    return out;
}

ExpertFigures expert_figures(const ExpertStats& stats, const Tokenizer& tokenizer) {
    ExpertFigures f;
    f.overview = {load_overview(stats), summary_by_layer(stats)};
    for (size_t m = 0; m < stats.layers.size(); ++m) {
        const ExpertLayerStats& s = stats.layers[m];
        std::vector<Figure> layer = {layer_load(stats, s)};
        if (stats.topk > 1) layer.push_back(layer_coselection(s));
        layer.push_back(layer_byte_classes(stats, s));
        if (s.next) layer.push_back(layer_transition(s));
        if (!stats.passage.ids.empty()) layer.push_back(layer_passage(stats, m, tokenizer));
        f.layers.push_back(std::move(layer));
    }
    return f;
}

}  // namespace tinygpt::report
