// `tinygpt experts MODEL --corpus TEXT [--json] [--html FILE] [--svg DIR]`: a look inside the
// experts of a Mixture-of-Experts model. The text runs through the inference path in windows of
// the model's context, and every MoE layer's routing is counted as it happens
// (analysis/expert_recorder.h): load shares, gates, router entropy, co-selection, the tokens and
// byte classes each expert takes, rarely chosen experts, agreement between consecutive MoE layers
// and a passage coloured by expert. docs/EXPERTS.md defines every number.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>

#include "analysis/expert_recorder.h"
#include "analysis/expert_stats_json.h"
#include "cli/commands.h"
#include "cli/common_flags.h"
#include "cli/memory_flag.h"
#include "cli/run_weights.h"
#include "cli/train_flags.h"
#include "io/atomic_write.h"
#include "load/model_source.h"
#include "report/expert_report.h"
#include "report/svg.h"
#include "train/data.h"
#include "util/error.h"

namespace tinygpt::cli {

namespace {

// Tokens listed per expert in the text output; --json and --html have --top-tokens of them.
constexpr int kTokensShown = 5;

void print_layer(const ExpertLayerStats& s, const ExpertStats& stats, const Tokenizer& tokenizer) {
    using report::format_number;
    using report::format_percent;
    std::printf("\nlayer %d: router entropy %.3f nats · load entropy %.3f (max ln E %.3f)\n",
                s.layer, s.router_entropy(), s.load_entropy(),
                std::log(static_cast<double>(s.experts())));
    const std::vector<int> never = s.never_chosen(), rare = s.rarely_chosen(stats.rare_threshold());
    auto list = [](const std::vector<int>& experts) {
        std::string out;
        for (const int e : experts) out += (out.empty() ? "" : ", ") + std::to_string(e);
        return out.empty() ? std::string("none") : out;
    };
    std::printf("  never chosen: %s · rarely chosen (load < %s): %s\n", list(never).c_str(),
                format_percent(stats.rare_threshold()).c_str(), list(rare).c_str());
    if (s.next)
        std::printf("  → layer %d: NMI %.3f · top-1 follow %s (baseline %s)\n", s.next->to_layer,
                    s.next->nmi, format_percent(s.next->follow).c_str(),
                    format_percent(s.next->follow_baseline).c_str());
    std::printf("  expert    load   top-1   gate    prob  tokens taken most often\n");
    const std::vector<double> load = s.load(), top1 = s.top1_share();
    for (int e = 0; e < s.experts(); ++e) {
        std::string tokens;
        const size_t shown = std::min<size_t>(s.top_tokens[e].size(), kTokensShown);
        for (size_t i = 0; i < shown; ++i) {
            const TokenCount& t = s.top_tokens[e][i];
            if (i > 0) tokens += "  ";
            tokens += quoted_piece(tokenizer.token_bytes(t.id)) + " " + std::to_string(t.count);
        }
        std::printf("  %6d  %6s  %6s  %5s  %6s  %s\n", e, format_percent(load[e]).c_str(),
                    format_percent(top1[e]).c_str(), format_number(s.mean_gate(e)).c_str(),
                    format_number(s.mean_prob(e)).c_str(), tokens.c_str());
    }
}

struct ExpertsCommand {
    std::string path, corpus_path, html_path, svg_dir;
    int threads = 0;
    int64_t max_tokens = 0;
    int top_tokens = 10, passage_tokens = 200;
    std::string max_memory, dtype;
    bool json = false;

    void check_flags() const {
        if (max_tokens < 0) throw Error("--max-tokens must be >= 0 (0 = the whole text)");
        if (top_tokens < 0) throw Error("--top-tokens must be >= 0");
        if (passage_tokens < 0) throw Error("--passage must be >= 0");
        if (!html_path.empty()) check_writable_target(html_path, "--html");
        std::error_code ec;
        if (!svg_dir.empty() && std::filesystem::exists(svg_dir, ec) &&
            !std::filesystem::is_directory(svg_dir, ec))
            throw Error("--svg '" + svg_dir + "' exists and is not a directory");
    }

    void run() const {
        check_flags();
        apply_threads_flag(threads);
        const OpenedModel model = open_model(path, ReadOptions{/*optimizer=*/false});
        const ModelConfig& cfg = model.config;
        if (!cfg.is_moe())
            throw Error(path +
                        ": model has no MoE layer (`experts` looks inside the experts of a "
                        "Mixture-of-Experts model)");
        const Corpus corpus = Corpus::load(corpus_path, model.tokenizer, /*progress=*/!json);
        // One window at a time through a KV-cache session, as `eval --per-token` holds it.
        const int64_t routed = max_tokens > 0 ? std::min<int64_t>(max_tokens, corpus.tokens.size())
                                              : static_cast<int64_t>(corpus.tokens.size());
        const int window = static_cast<int>(std::min<int64_t>(cfg.ctx, routed));
        check_memory(estimate_scoring(cfg, window, typed_weight_bytes(model, dtype)),
                     memory_budget(max_memory),
                     "the model is too large for this machine: look with a smaller one");
        const ModelWeights weights = run_weights(model, dtype);
        ExpertStatsOptions options;
        options.top_tokens = top_tokens;
        options.passage_tokens = passage_tokens;
        options.max_tokens = max_tokens;
        const ExpertStats stats =
            collect_expert_stats(weights, corpus.tokens, model.tokenizer, options);
        write_pages(stats, model);
        if (json) {
            nlohmann::json out = expert_stats_json(stats, model.tokenizer);
            out["model"] = path;
            out["corpus"] = corpus_path;
            std::printf("%s\n", out.dump().c_str());
            return;
        }
        std::printf(
            "tinygpt experts\n  model    %s (%s) · %s\n  corpus   %s · %s tokens routed in %d "
            "windows of up to %d\n  routing  %zu MoE layers · %d experts top-%d · gates %s\n",
            path.c_str(), model.format.c_str(), cfg.describe().c_str(), corpus_path.c_str(),
            with_commas(stats.tokens).c_str(), stats.windows, cfg.ctx, stats.layers.size(),
            stats.experts, stats.topk, stats.renormalized ? "renormalised" : "not renormalised");
        for (const ExpertLayerStats& s : stats.layers) print_layer(s, stats, model.tokenizer);
        if (!html_path.empty()) std::printf("\nhtml  %s\n", html_path.c_str());
        if (!svg_dir.empty()) std::printf("svg   %s/\n", svg_dir.c_str());
    }

    void write_pages(const ExpertStats& stats, const OpenedModel& model) const {
        if (html_path.empty() && svg_dir.empty()) return;
        const report::ExpertFigures figures = report::expert_figures(stats, model.tokenizer);
        if (!html_path.empty()) {
            const report::ExpertPageInfo info{path, model.config.describe(), corpus_path,
                                              model.config.ctx};
            io::atomic_write_text(html_path,
                                  report::expert_page(stats, model.tokenizer, info, figures));
        }
        if (!svg_dir.empty()) report::write_svg_files(svg_dir, figures.all());
    }
};

}  // namespace

void register_experts(CLI::App& app) {
    auto state = std::make_shared<ExpertsCommand>();
    CLI::App* cmd = app.add_subcommand(
        "experts", "Look inside a MoE model's experts: load, gates, entropy, tokens, agreement");
    cmd->add_option("file", state->path, kModelHelp)->required();
    cmd->add_option("--corpus", state->corpus_path, "Text to route through the model")->required();
    cmd->add_flag("--json", state->json, "Print one JSON object");
    cmd->add_option("--html", state->html_path, "Write the plots and tables as one HTML page")
        ->check(non_empty_path());
    cmd->add_option("--svg", state->svg_dir, "Write each plot as DIR/<name>.svg")
        ->check(non_empty_path());
    cmd->add_option("--max-tokens", state->max_tokens,
                    "Route at most this many tokens from the start (0 = the whole text)")
        ->capture_default_str();
    cmd->add_option("--top-tokens", state->top_tokens, "Tokens listed per expert")
        ->capture_default_str();
    cmd->add_option("--passage", state->passage_tokens,
                    "Tokens of the text shown coloured by expert")
        ->capture_default_str();
    cmd->add_option("--threads", state->threads, "Threads (0 = all cores)")->capture_default_str();
    add_max_memory_flag(cmd, state->max_memory);
    add_run_dtype_flag(cmd, state->dtype);
    cmd->callback([state] { state->run(); });
}

}  // namespace tinygpt::cli
