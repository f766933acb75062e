// The history readers, figures and page of report/run_report.h.
#include "report/run_report.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "report/charts.h"
#include "report/html.h"
#include "util/error.h"

namespace tinygpt::report {

namespace {

// Points drawn per curve: every point is a circle with a tooltip, so a long log is thinned
// (evenly, the last step always kept) to keep the page light in a browser.
constexpr size_t kMaxCurvePoints = 600;
// Steps per load heatmap: the cells stay at least 8 px wide within a page's width.
constexpr size_t kMaxHeatmapColumns = 128;

// `n` indices spread evenly over [0, size), the last one included; all of them when size <= n.
std::vector<size_t> spread_indices(size_t size, size_t n) {
    std::vector<size_t> out;
    if (size <= n) {
        for (size_t i = 0; i < size; ++i) out.push_back(i);
        return out;
    }
    for (size_t k = 0; k < n; ++k) out.push_back(k * (size - 1) / (n - 1));
    return out;
}

void add(StepSeries& s, int64_t step, double value) {
    s.step.push_back(static_cast<double>(step));
    s.value.push_back(value);
}

// The value of an optional numeric field; NaN when absent or null (JSON has no NaN: the log
// writes a non-finite value as null).
double optional_number(const nlohmann::json& record, const char* key, const std::string& where) {
    const auto it = record.find(key);
    if (it == record.end() || it->is_null()) return NAN;
    if (!it->is_number()) throw Error(where + "\"" + key + "\" is not a number");
    return it->get<double>();
}

std::vector<std::vector<double>> load_matrix(const nlohmann::json& value,
                                             const std::string& where) {
    if (!value.is_array()) throw Error(where + "\"expert_load\" is not an array of layers");
    std::vector<std::vector<double>> load;
    for (const nlohmann::json& layer : value) {
        if (!layer.is_array()) throw Error(where + "\"expert_load\" has a layer that is no array");
        std::vector<double> row;
        for (const nlohmann::json& share : layer) {
            if (!share.is_number())
                throw Error(where + "\"expert_load\" holds something that is not a number");
            row.push_back(share.get<double>());
        }
        load.push_back(std::move(row));
    }
    return load;
}

bool same_shape(const std::vector<std::vector<double>>& a,
                const std::vector<std::vector<double>>& b) {
    if (a.size() != b.size()) return false;
    for (size_t l = 0; l < a.size(); ++l)
        if (a[l].size() != b[l].size()) return false;
    return true;
}

Figure curve(const std::string& name, const std::string& title, const std::string& y_label,
             std::vector<LineSeries> series, const std::string& caption) {
    LineChart chart{title, "step", y_label, std::move(series), std::nullopt};
    return {name, caption, render(chart)};
}

std::string step_text(double step) {
    return std::to_string(static_cast<int64_t>(step));
}

std::string layer_name(size_t layer) {
    std::string n = std::to_string(layer);
    return "layer" + std::string(n.size() < 2 ? 2 - n.size() : 0, '0') + n + "_load_over_steps";
}

}  // namespace

LineSeries step_line(const std::string& name, const StepSeries& s) {
    LineSeries out{name, {}, {}};
    for (const size_t i : spread_indices(s.step.size(), kMaxCurvePoints)) {
        out.x.push_back(s.step[i]);
        out.y.push_back(s.value[i]);
    }
    return out;
}

bool has_values(const StepSeries& s) {
    return std::any_of(s.value.begin(), s.value.end(), [](double v) { return !std::isnan(v); });
}

RunHistory history_from_state(const TrainingState& state) {
    RunHistory h;
    h.source = "model file";
    for (const LossRecord& r : state.loss_history) {
        add(h.loss, r.step, r.loss);
        add(h.aux, r.step, r.aux);
        add(h.val_loss, r.step, r.val_loss);
    }
    for (const ExpertLoadRecord& r : state.expert_load_history) {
        ExpertLoadSnapshot s{r.step, {}};
        for (const std::vector<float>& layer : r.load)
            s.load.emplace_back(layer.begin(), layer.end());
        h.loads.push_back(std::move(s));
    }
    return h;
}

RunHistory read_log_history(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw Error(path + ": cannot open the file");
    RunHistory h;
    h.source = "log";
    std::string text;
    for (int64_t number = 1; std::getline(in, text); ++number) {
        if (text.find_first_not_of(" \t\r") == std::string::npos) continue;  // a blank line
        const std::string where = path + ": line " + std::to_string(number) + ": ";
        const nlohmann::json record =
            nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
        if (record.is_discarded()) throw Error(where + "not valid JSON");
        if (!record.is_object()) throw Error(where + "not a JSON object");
        const auto step = record.find("step");
        if (step == record.end() || !step->is_number_integer() || step->get<int64_t>() < 1)
            throw Error(where + "no \"step\" (a whole number >= 1)");
        const auto loss = record.find("loss");
        if (loss == record.end() || !(loss->is_number() || loss->is_null()))
            throw Error(where + "no \"loss\" (a number)");
        const int64_t s = step->get<int64_t>();
        add(h.loss, s, optional_number(record, "loss", where));
        add(h.val_loss, s, optional_number(record, "val_loss", where));
        add(h.aux, s, optional_number(record, "aux", where));
        add(h.z, s, optional_number(record, "z", where));
        add(h.lr, s, optional_number(record, "lr", where));
        add(h.kl, s, optional_number(record, "kl", where));
        add(h.val_kl, s, optional_number(record, "val_kl", where));
        add(h.val_bpb, s, optional_number(record, "val_bpb", where));
        add(h.train_seconds, s, optional_number(record, "train_seconds", where));
        if (const auto load = record.find("expert_load"); load != record.end()) {
            ExpertLoadSnapshot snapshot{s, load_matrix(*load, where)};
            if (!h.loads.empty() && !same_shape(h.loads.front().load, snapshot.load))
                throw Error(where + "\"expert_load\" has another shape than on the lines before");
            h.loads.push_back(std::move(snapshot));
        }
    }
    if (in.bad()) throw Error(path + ": reading failed");
    if (h.loss.empty()) throw Error(path + ": no training records (an empty log)");
    return h;
}

RunFigures run_figures(const RunHistory& h) {
    RunFigures out;
    const std::string absent = h.source == "log" ? "not in the log" : "not kept in a model file";
    auto missing = [&](const std::string& what, const std::string& why) {
        out.missing.push_back(what + ": " + why);
    };

    std::vector<LineSeries> loss;
    if (has_values(h.loss)) loss.push_back(step_line("train", h.loss));
    if (has_values(h.val_loss)) loss.push_back(step_line("validation", h.val_loss));
    if (!loss.empty())
        out.figures.push_back(curve("loss", "Loss", "cross-entropy (nats)", std::move(loss),
                                    "Training cross-entropy per step, and the validation "
                                    "cross-entropy where it was measured."));
    if (!has_values(h.val_loss)) missing("validation loss", "no validation ran (--val-every)");

    const bool moe = !h.loads.empty();
    if (has_values(h.aux) && moe)
        out.figures.push_back(curve("aux", "Load-balance (aux) loss", "aux",
                                    {step_line("aux", h.aux)},
                                    "The load-balance loss summed over the MoE layers."));
    else
        missing("aux loss", moe ? absent : "a dense model (no MoE layer)");
    if (has_values(h.z))
        out.figures.push_back(curve("z", "Router z-loss", "z", {step_line("z", h.z)},
                                    "The router z-loss summed over the MoE layers."));
    else
        missing("z-loss", !moe ? "a dense model (no MoE layer)" : absent);
    if (has_values(h.lr))
        out.figures.push_back(curve("lr", "Learning rate", "learning rate", {step_line("lr", h.lr)},
                                    "The learning rate of each step (warm-up and decay)."));
    else
        missing("learning rate", absent);
    std::vector<LineSeries> kl;
    if (has_values(h.kl)) kl.push_back(step_line("train", h.kl));
    if (has_values(h.val_kl)) kl.push_back(step_line("validation", h.val_kl));
    if (!kl.empty())
        out.figures.push_back(curve("kl", "Distillation KL", "KL (nats)", std::move(kl),
                                    "The KL divergence from the teacher (distill runs)."));
    else
        missing("distillation KL", "not a distill run");

    if (!moe) {
        missing("expert load", h.source == "log" ? "a dense model (no MoE layer)"
                                                 : "no expert-load history (a dense model)");
        return out;
    }
    const std::vector<size_t> columns = spread_indices(h.loads.size(), kMaxHeatmapColumns);
    const size_t layers = h.loads.front().load.size();
    for (size_t l = 0; l < layers; ++l) {
        const size_t experts = h.loads.front().load[l].size();
        if (experts == 0) continue;  // a dense layer of a mixed model
        Heatmap map;
        map.title = "Layer " + std::to_string(l) + ": expert load over the run";
        map.x_label = "step";
        map.y_label = "expert";
        map.rows = static_cast<int>(experts);
        map.cols = static_cast<int>(columns.size());
        map.percent = true;
        map.scale_label = "load share";
        for (size_t e = 0; e < experts; ++e) map.row_labels.push_back(std::to_string(e));
        for (const size_t c : columns) map.col_labels.push_back(std::to_string(h.loads[c].step));
        for (size_t e = 0; e < experts; ++e)
            for (const size_t c : columns) {
                const ExpertLoadSnapshot& s = h.loads[c];
                // A state whose layers disagree in shape cannot come from one run; show a hole.
                const bool have = l < s.load.size() && e < s.load[l].size();
                map.values.push_back(have ? s.load[l][e] : NAN);
                map.tooltips.push_back("step " + std::to_string(s.step) + ", expert " +
                                       std::to_string(e) + ": " +
                                       format_percent(map.values.back()));
            }
        out.figures.push_back({layer_name(l),
                               "Layer " + std::to_string(l) +
                                   ": the share of the (token, slot) assignments each expert "
                                   "took in the batch of each recorded step (1/E is balanced).",
                               render(map)});
    }
    return out;
}

void add_plots(HtmlPage& page, const RunFigures& figures) {
    page.heading(2, "Plots");
    for (const Figure& f : figures.figures) page.figure(f);
    if (figures.missing.empty()) return;
    page.heading(2, "Plots left out");
    for (const std::string& why : figures.missing) page.paragraph(why);
}

std::string run_page(const RunHistory& h, const std::string& input, const RunFigures& figures) {
    HtmlPage page("tinygpt report: " + input);
    page.heading(1, "Training run: " + input);
    const auto last_value = [](const StepSeries& s) {
        for (size_t i = s.value.size(); i-- > 0;)
            if (!std::isnan(s.value[i])) return std::pair{s.step[i], s.value[i]};
        return std::pair<double, double>{NAN, NAN};
    };
    std::vector<std::vector<std::string>> rows;
    rows.push_back({"source", h.source});
    rows.push_back({"steps recorded", std::to_string(h.loss.step.size())});
    if (!h.loss.empty())
        rows.push_back(
            {"steps", step_text(h.loss.step.front()) + " to " + step_text(h.loss.step.back())});
    for (const auto& [name, series] :
         {std::pair{"final training loss", &h.loss}, {"final validation loss", &h.val_loss}}) {
        const auto [step, value] = last_value(*series);
        if (!std::isnan(value))
            rows.push_back({name, format_number(value) + " (step " + step_text(step) + ")"});
    }
    rows.push_back({"expert-load records", std::to_string(h.loads.size())});
    page.table({"", ""}, rows, {false, false});
    add_plots(page, figures);
    return page.str();
}

}  // namespace tinygpt::report
