// `tinygpt report MODEL_OR_LOG... --html FILE [--svg DIR]`: a training run drawn as one
// self-contained HTML page (and, with --svg, as .svg files): loss and validation, aux and z,
// learning rate, distillation KL and, per MoE layer, the expert load over the run as a heatmap.
// The input is a v3 .tinygpt file (its training state's histories) or the JSON lines of
// `train --log` / `distill --log`, told apart by the file's first bytes, not its name. Several
// inputs are compared on one page (report/run_comparison.h).
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>

#include "cli/commands.h"
#include "cli/common_flags.h"
#include "io/atomic_write.h"
#include "io/mapped_file.h"
#include "io/model_file.h"
#include "report/run_comparison.h"
#include "report/run_report.h"
#include "report/svg.h"
#include "util/error.h"

namespace tinygpt::cli {

namespace {

struct ReportCommand {
    std::vector<std::string> inputs;
    std::vector<std::string> labels;
    std::string html_path, svg_dir;

    void check_flags() const {
        if (html_path.empty() && svg_dir.empty())
            throw Error("report: give --html FILE (and/or --svg DIR) for the output");
        if (!html_path.empty()) check_writable_target(html_path, "--html");
        std::error_code ec;
        if (!svg_dir.empty() && std::filesystem::exists(svg_dir, ec) &&
            !std::filesystem::is_directory(svg_dir, ec))
            throw Error("--svg '" + svg_dir + "' exists and is not a directory");
    }

    static report::RunHistory read_history(const std::string& path) {
        std::error_code ec;
        if (std::filesystem::is_directory(path, ec))
            throw Error(path +
                        ": a directory has no training history (give a .tinygpt file "
                        "saved by train, or a --log file)");
        if (!io::file_starts_with(path, "TGPT")) {
            if (io::file_starts_with(path, "GGUF"))
                throw Error(path + ": a GGUF file has no training history");
            return report::read_log_history(path);
        }
        ReadOptions options;
        options.optimizer = false;
        const ModelFile file = ModelFile::read(path, options);
        const TrainingState& state = file.training_state();
        if (state.loss_history.empty())
            throw Error(path + ": the file has no training history (it keeps no loss records)");
        return report::history_from_state(state);
    }

    void run() const {
        check_flags();
        if (!labels.empty() && labels.size() != inputs.size())
            throw Error("--label is given " + std::to_string(labels.size()) + " time(s) for " +
                        std::to_string(inputs.size()) + " input(s): give one per input, in order");
        // A legend names each curve once: an empty or repeated label would leave a reader guessing.
        for (size_t i = 0; i < labels.size(); ++i) {
            if (labels[i].empty())
                throw Error("--label " + std::to_string(i + 1) + " is empty: name the run of '" +
                            inputs[i] + "'");
            for (size_t k = 0; k < i; ++k)
                if (labels[k] == labels[i])
                    throw Error("--label '" + labels[i] +
                                "' is given twice: each run needs a name of its own");
        }
        if (inputs.size() > 1)
            compare();
        else
            draw_one(inputs.front());
    }

    // Several runs on one page: validation against steps and against seconds.
    void compare() const {
        std::vector<report::NamedRun> runs;
        for (size_t i = 0; i < inputs.size(); ++i) {
            const std::string name =
                labels.empty() ? std::filesystem::path(inputs[i]).stem().string() : labels[i];
            runs.push_back({name, inputs[i], read_history(inputs[i])});
        }
        const report::RunFigures figures = report::comparison_figures(runs);
        if (!html_path.empty())
            io::atomic_write_text(html_path, report::comparison_page(runs, figures));
        if (!svg_dir.empty()) report::write_svg_files(svg_dir, figures.figures);
        std::printf("tinygpt report: %zu runs compared\n", runs.size());
        for (const report::NamedRun& r : runs) {
            std::printf("  %-12s %s (%s, %zu steps recorded)\n", r.name.c_str(), r.input.c_str(),
                        r.history.source.c_str(), r.history.loss.step.size());
        }
        print_outputs(figures);
    }

    // "  plots  N (K left out)" and where the page and the SVG files went.
    void print_outputs(const report::RunFigures& figures) const {
        std::printf("  plots  %zu", figures.figures.size());
        if (!figures.missing.empty()) std::printf(" (%zu left out)", figures.missing.size());
        std::printf("\n");
        if (!html_path.empty()) std::printf("html  %s\n", html_path.c_str());
        if (!svg_dir.empty()) std::printf("svg   %s/\n", svg_dir.c_str());
    }

    void draw_one(const std::string& path) const {
        const report::RunHistory history = read_history(path);
        const report::RunFigures figures = report::run_figures(history);
        if (!html_path.empty())
            io::atomic_write_text(html_path, report::run_page(history, path, figures));
        if (!svg_dir.empty()) report::write_svg_files(svg_dir, figures.figures);

        std::printf("tinygpt report\n  input  %s (%s)\n  steps  %zu recorded", path.c_str(),
                    history.source.c_str(), history.loss.step.size());
        if (!history.loss.empty())
            std::printf(", %lld to %lld", static_cast<long long>(history.loss.step.front()),
                        static_cast<long long>(history.loss.step.back()));
        std::printf("\n");
        for (const auto& [name, series] :
             {std::pair{"loss", &history.loss}, std::pair{"val loss", &history.val_loss}}) {
            for (size_t i = series->value.size(); i-- > 0;)
                if (!std::isnan(series->value[i])) {
                    std::printf("  final %-8s %.4f (step %lld)\n", name, series->value[i],
                                static_cast<long long>(series->step[i]));
                    break;
                }
        }
        print_outputs(figures);
    }
};

}  // namespace

void register_report(CLI::App& app) {
    auto state = std::make_shared<ReportCommand>();
    CLI::App* cmd = app.add_subcommand("report",
                                       "Draw a training run (a .tinygpt file or a --log file) as "
                                       "an HTML page, or compare several");
    cmd->add_option("inputs", state->inputs,
                    "A .tinygpt file saved by train/distill, or a --log file; several: the runs "
                    "compared on one page")
        ->required();
    cmd->add_option("--label", state->labels,
                    "With several inputs: each run's name in the legend, one per input in order "
                    "(default: the file names)");
    cmd->add_option("--html", state->html_path, "Write the plots as one HTML page")
        ->check(non_empty_path());
    cmd->add_option("--svg", state->svg_dir, "Write each plot as DIR/<name>.svg")
        ->check(non_empty_path());
    cmd->callback([state] { state->run(); });
}

}  // namespace tinygpt::cli
