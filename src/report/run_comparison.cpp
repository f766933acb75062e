#include "report/run_comparison.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "report/charts.h"
#include "report/html.h"

namespace tinygpt::report {

namespace {

// The validation measure every run has: bits per byte (comparable across tokenizers) where all
// logs carry it, else the cross-entropy in nats per token.
struct ValidationMeasure {
    bool bits_per_byte = false;
    const StepSeries& of(const RunHistory& h) const {
        return bits_per_byte ? h.val_bpb : h.val_loss;
    }
    std::string unit() const { return bits_per_byte ? "bits per byte" : "nats per token"; }
};

ValidationMeasure validation_measure(const std::vector<NamedRun>& runs) {
    return {std::all_of(runs.begin(), runs.end(),
                        [](const NamedRun& r) { return has_values(r.history.val_bpb); })};
}

// The points of `values` where both it and the run's training seconds are known, against the
// seconds.
LineSeries against_seconds(const std::string& name, const StepSeries& values,
                           const StepSeries& seconds) {
    StepSeries timed;
    for (size_t i = 0; i < values.value.size() && i < seconds.value.size(); ++i) {
        if (std::isnan(values.value[i]) || std::isnan(seconds.value[i])) continue;
        timed.step.push_back(seconds.value[i]);
        timed.value.push_back(values.value[i]);
    }
    return step_line(name, timed);
}

// The series without its unmeasured steps (validation runs every few steps): a line through the
// measured points rather than isolated dots.
StepSeries measured(const StepSeries& s) {
    StepSeries out;
    for (size_t i = 0; i < s.value.size(); ++i)
        if (!std::isnan(s.value[i])) {
            out.step.push_back(s.step[i]);
            out.value.push_back(s.value[i]);
        }
    return out;
}

std::pair<double, double> last_and_best(const StepSeries& s) {
    double last = NAN, best = NAN;
    for (const double v : s.value) {
        if (std::isnan(v)) continue;
        last = v;
        best = std::isnan(best) ? v : std::min(best, v);
    }
    return {last, best};
}

// The table's figures: four decimals tell close runs apart (format_number keeps three digits).
std::string fixed(double v, int decimals) {
    if (std::isnan(v)) return "";
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
    return buf;
}

double last_value(const StepSeries& s) {
    for (size_t i = s.value.size(); i-- > 0;)
        if (!std::isnan(s.value[i])) return s.value[i];
    return NAN;
}

// The validation axis's top: the worst value any run has after its first quarter of steps. The
// first validations of a run (several bits above the rest) would otherwise squeeze the part where
// the runs differ into a sliver of the plot.
double validation_axis_top(const std::vector<NamedRun>& runs, const ValidationMeasure& val) {
    double top = NAN;
    for (const NamedRun& r : runs) {
        const StepSeries& v = val.of(r.history);
        if (v.step.empty()) continue;
        const double from = v.step.front() + 0.25 * (v.step.back() - v.step.front());
        for (size_t i = 0; i < v.value.size(); ++i)
            if (v.step[i] >= from && !std::isnan(v.value[i]))
                top = std::isnan(top) ? v.value[i] : std::max(top, v.value[i]);
    }
    return top;
}

// Leaves the points above `top` out (a gap), and gives the chart the range [lowest, top].
void cut_above(LineChart& chart, double top) {
    double lowest = NAN;
    for (LineSeries& s : chart.series)
        for (double& y : s.y) {
            if (y > top) y = NAN;
            if (!std::isnan(y)) lowest = std::isnan(lowest) ? y : std::min(lowest, y);
        }
    if (!std::isnan(lowest)) chart.y_range = {lowest - 0.02 * (top - lowest), top};
}

}  // namespace

RunFigures comparison_figures(const std::vector<NamedRun>& runs) {
    RunFigures out;
    const ValidationMeasure val = validation_measure(runs);
    std::vector<LineSeries> by_step, by_seconds, train;
    bool timed = true;
    for (const NamedRun& r : runs) {
        const StepSeries& v = val.of(r.history);
        if (has_values(v)) by_step.push_back(step_line(r.name, measured(v)));
        if (has_values(r.history.train_seconds))
            by_seconds.push_back(against_seconds(r.name, v, r.history.train_seconds));
        else
            timed = false;
        if (has_values(r.history.loss)) train.push_back(step_line(r.name, r.history.loss));
    }
    const std::string y = "validation (" + val.unit() + ")";
    const double top = validation_axis_top(runs, val);
    const std::string scale = std::isnan(top) ? ""
                                              : " Values above " + format_number(top) +
                                                    " (the first validations) are off the scale.";
    if (!by_step.empty()) {
        LineChart chart{"Validation against steps", "step", y, std::move(by_step), std::nullopt};
        cut_above(chart, top);
        out.figures.push_back({"validation_vs_steps",
                               "Validation loss of each run against the optimizer step." + scale,
                               render(chart)});
    } else {
        out.missing.push_back("validation: no run has a validation loss (--val-split)");
    }
    if (timed && !by_seconds.empty()) {
        LineChart chart{"Validation against training time", "seconds", y, std::move(by_seconds),
                        std::nullopt};
        cut_above(chart, top);
        out.figures.push_back(
            {"validation_vs_seconds",
             "Validation loss of each run against the wall-clock seconds spent in training "
             "steps (validation and saving not counted)." +
                 scale,
             render(chart)});
    } else {
        out.missing.push_back(
            "validation against time: a run's input has no training seconds (a model file, or "
            "a log written before they were logged)");
    }
    if (!train.empty())
        out.figures.push_back({"train_loss_vs_steps",
                               "Training cross-entropy of each run (nats per token) per step.",
                               render(LineChart{"Training loss", "step", "cross-entropy (nats)",
                                                std::move(train), std::nullopt})});
    return out;
}

std::string comparison_page(const std::vector<NamedRun>& runs, const RunFigures& figures) {
    HtmlPage page("tinygpt report: " + std::to_string(runs.size()) + " runs");
    page.heading(1, "Training runs compared");
    const ValidationMeasure val = validation_measure(runs);
    std::vector<std::vector<std::string>> rows;
    for (const NamedRun& r : runs) {
        const RunHistory& h = r.history;
        const auto [last, best] = last_and_best(val.of(h));
        const double seconds = last_value(h.train_seconds);
        rows.push_back(
            {r.name, r.input,
             h.loss.empty() ? "" : std::to_string(static_cast<int64_t>(h.loss.step.back())),
             fixed(last, 4), fixed(best, 4), fixed(seconds, 1)});
    }
    page.table({"run", "input", "last step", "final validation (" + val.unit() + ")",
                "best validation", "training seconds"},
               rows, {false, false, true, true, true, true});
    add_plots(page, figures);
    return page.str();
}

}  // namespace tinygpt::report
