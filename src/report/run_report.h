// The page of `tinygpt report`: a training run's history (from a v3 .tinygpt file's training
// state or from the JSON lines of `train --log` / `distill --log`) drawn as loss, validation,
// aux, z, learning-rate and KL curves and, per MoE layer, a heatmap of the expert load over the
// run, laid out as one self-contained HTML page (report/html.h) and written as .svg files.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "report/charts.h"
#include "report/figure.h"
#include "train/train_state.h"

namespace tinygpt::report {

// One series over steps; a NaN value: not recorded at that step.
struct StepSeries {
    std::vector<double> step, value;
    bool empty() const { return step.empty(); }
};

struct ExpertLoadSnapshot {
    int64_t step = 0;
    std::vector<std::vector<double>> load;  // [layer][expert]; an empty layer is dense
};

struct RunHistory {
    std::string source;  // "model file" or "log"
    StepSeries loss;     // training cross-entropy
    StepSeries val_loss, aux, z, lr, kl, val_kl;
    StepSeries val_bpb;        // validation in bits per byte of text (logs of newer runs)
    StepSeries train_seconds;  // seconds spent training up to each step (logs of newer runs)
    std::vector<ExpertLoadSnapshot> loads;
};

RunHistory history_from_state(const TrainingState& state);

// Parses the JSON lines of a --log file. Error "<path>: line N: …" on a line that is not a JSON
// object with a numeric "step" and "loss", or whose fields have the wrong shape.
RunHistory read_log_history(const std::string& path);

struct RunFigures {
    std::vector<Figure> figures;
    std::vector<std::string> missing;  // the plots left out, each with why ("z: not in a …")
};

RunFigures run_figures(const RunHistory& history);

// For the charts of report/run_comparison.h too: a series as a chart line (thinned to a few
// hundred points, the last kept), and whether it holds any value.
LineSeries step_line(const std::string& name, const StepSeries& s);
bool has_values(const StepSeries& s);

class HtmlPage;
// The page's "Plots" section: every figure, then each plot left out with why.
void add_plots(HtmlPage& page, const RunFigures& figures);

// The whole HTML document; `input` is the path as given.
std::string run_page(const RunHistory& history, const std::string& input,
                     const RunFigures& figures);

}  // namespace tinygpt::report
