// report/run_report.h without the binary: the --log reader (values, nulls, hostile lines named by
// number), the histories of a training state, and which figures a history gives (one load
// heatmap per MoE layer, a column per load record up to the cap, nothing MoE for a dense run).
#include <gtest/gtest.h>

#include <cmath>

#include "cli_harness.h"
#include "markup_check.h"
#include "report/run_comparison.h"
#include "report/run_report.h"
#include "util/error.h"

namespace tinygpt {
namespace {

using namespace test;

class ReportRun : public CliTest {
  protected:
    std::string log(const std::string& text) {
        const fs::path p = dir_ / "run.jsonl";
        write_file(p, text);
        return p.string();
    }
};

std::vector<std::string> names(const report::RunFigures& f) {
    std::vector<std::string> out;
    for (const report::Figure& figure : f.figures) out.push_back(figure.name);
    return out;
}

// The error message of read_log_history on `text`, "" when it reads.
std::string log_error(const std::string& path) {
    try {
        report::read_log_history(path);
    } catch (const Error& e) {
        return e.what();
    }
    return "";
}

TEST_F(ReportRun, LogValuesNullsAndLoadsAreRead) {
    const std::string path = log(
        R"({"step":1,"loss":2.5,"aux":0.1,"z":0.01,"lr":1e-4,"expert_load":[[0.5,0.5],[],[0.25,0.75]]})"
        "\n\n"
        R"({"step":2,"loss":null,"aux":0.2,"z":0.02,"lr":2e-4,"val_loss":2.25,"expert_load":[[1,0],[],[0,1]]})"
        "\n");
    const report::RunHistory h = report::read_log_history(path);
    EXPECT_EQ(h.source, "log");
    ASSERT_EQ(h.loss.step.size(), 2u);
    EXPECT_EQ(h.loss.step[1], 2.0);
    EXPECT_EQ(h.loss.value[0], 2.5);
    EXPECT_TRUE(std::isnan(h.loss.value[1])) << "null (a non-finite loss) reads as NaN";
    EXPECT_TRUE(std::isnan(h.val_loss.value[0]));
    EXPECT_EQ(h.val_loss.value[1], 2.25);
    EXPECT_EQ(h.lr.value[1], 2e-4);
    ASSERT_EQ(h.loads.size(), 2u);
    EXPECT_EQ(h.loads[1].load[2][1], 1.0);

    const report::RunFigures f = report::run_figures(h);
    EXPECT_EQ(names(f),
              (std::vector<std::string>{"loss", "aux", "z", "lr", "layer00_load_over_steps",
                                        "layer02_load_over_steps"}))
        << "the empty (dense) layer 1 has no heatmap";
    ASSERT_EQ(f.missing.size(), 1u);
    EXPECT_NE(f.missing[0].find("KL"), std::string::npos);
    const std::string svg = f.figures[4].svg.file_svg();
    EXPECT_EQ(markup_problem(svg), "");
    EXPECT_EQ(count_of(svg, ", expert 0: "), 2u) << "one column per load record";
    EXPECT_NE(svg.find("step 2, expert 0: 100"), std::string::npos) << svg;
}

TEST_F(ReportRun, DistillLogHasItsKlCurve) {
    const std::string path = log(R"({"step":1,"loss":2,"aux":0,"kl":0.5,"lr":1e-3})"
                                 "\n"
                                 R"({"step":2,"loss":1.5,"aux":0,"kl":0.25,"val_kl":0.375})"
                                 "\n");
    const report::RunFigures f = report::run_figures(report::read_log_history(path));
    EXPECT_EQ(names(f), (std::vector<std::string>{"loss", "lr", "kl"}));
    const std::string kl = f.figures[2].svg.file_svg();
    EXPECT_EQ(count_of(kl, "train at "), 2u);
    EXPECT_EQ(count_of(kl, "validation at "), 1u);
    // A dense log: aux is written (as 0) but there is no MoE layer to draw.
    bool dense = false;
    for (const std::string& why : f.missing)
        dense = dense || why == "aux loss: a dense model (no MoE layer)";
    EXPECT_TRUE(dense);
}

TEST_F(ReportRun, HostileLinesAreNamedByNumber) {
    const std::string good = R"({"step":1,"loss":1})"
                             "\n";
    const std::vector<std::pair<std::string, std::string>> cases = {
        {"{\"step\":2,\"loss\":", "line 2: not valid JSON"},
        {"[1,2]", "line 2: not a JSON object"},
        {R"({"loss":1})", "line 2: no \"step\""},
        {R"({"step":-3,"loss":1})", "line 2: no \"step\""},
        {R"({"step":1.5,"loss":1})", "line 2: no \"step\""},
        {R"({"step":2})", "line 2: no \"loss\""},
        {R"({"step":2,"loss":"1"})", "line 2: no \"loss\""},
        {R"({"step":2,"loss":1,"lr":"fast"})", "line 2: \"lr\" is not a number"},
        {R"({"step":2,"loss":1,"expert_load":[[0.5],"x"]})", "line 2: \"expert_load\""},
        {R"({"step":2,"loss":1,"expert_load":[[{}]]})", "line 2: \"expert_load\""},
        {std::string("\xFF\xFE\x00\x01", 4), "line 2: not valid JSON"},
    };
    for (const auto& [line, expected] : cases) {
        SCOPED_TRACE(line);
        const std::string message = log_error(log(good + line + "\n"));
        EXPECT_NE(message.find(expected), std::string::npos) << message;
        EXPECT_NE(message.find("run.jsonl"), std::string::npos) << message;
    }
    // The load's shape must stay that of the first record.
    const std::string shapes = log(R"({"step":1,"loss":1,"expert_load":[[0.5,0.5]]})"
                                   "\n"
                                   R"({"step":2,"loss":1,"expert_load":[[0.5,0.25,0.25]]})");
    EXPECT_NE(log_error(shapes).find("line 2: \"expert_load\" has another shape"),
              std::string::npos);
    EXPECT_NE(log_error(log("\n\n")).find("no training records"), std::string::npos);
    EXPECT_NE(log_error((dir_ / "missing.jsonl").string()).find("cannot open"), std::string::npos);
}

TEST_F(ReportRun, StateHistoriesAndTheColumnCap) {
    TrainingState state;
    for (int64_t step = 1; step <= 300; ++step) {
        state.loss_history.push_back(
            {step, 3.0f - 0.001f * step, 0.5f, step % 100 == 0 ? 2.5f : NAN});
        state.expert_load_history.push_back({step, {{0.75f, 0.25f}, {0.5f, 0.5f}}});
    }
    const report::RunHistory h = report::history_from_state(state);
    EXPECT_EQ(h.source, "model file");
    EXPECT_EQ(h.val_loss.value[99], 2.5);
    const report::RunFigures f = report::run_figures(h);
    EXPECT_EQ(names(f), (std::vector<std::string>{"loss", "aux", "layer00_load_over_steps",
                                                  "layer01_load_over_steps"}));
    EXPECT_EQ(f.missing.size(), 3u) << "z, learning rate, KL";
    const std::string map = f.figures[2].svg.file_svg();
    EXPECT_EQ(count_of(map, ", expert 1: "), 128u) << "300 records thinned to 128 columns";
    EXPECT_NE(map.find("step 1, expert 0: 75"), std::string::npos) << "the first kept";
    EXPECT_NE(map.find("step 300, expert 1: 25"), std::string::npos) << "the last kept";
    // Curves are thinned too, first and last step kept.
    const std::string loss = f.figures[0].svg.file_svg();
    EXPECT_EQ(count_of(loss, "train at "), 300u);

    const std::string page = report::run_page(h, "m.tinygpt", f);
    EXPECT_EQ(markup_problem(page), "");
    EXPECT_EQ(count_of(page, "<svg "), 4u);
    EXPECT_NE(page.find("learning rate: not kept in a model file"), std::string::npos);

    // A dense run: the curves, no load heatmap, and the page says why.
    TrainingState dense;
    dense.loss_history = {{1, 2.0f, 0.0f, NAN}, {2, 1.5f, 0.0f, 1.75f}};
    const report::RunFigures d = report::run_figures(report::history_from_state(dense));
    EXPECT_EQ(names(d), std::vector<std::string>{"loss"});
    bool said = false;
    for (const std::string& why : d.missing) said = said || why.find("expert load") == 0;
    EXPECT_TRUE(said);
}

// Runs compared: the first validations (far above the rest) are left off the scale, down to the
// worst value any run has after its first quarter of steps; the seconds plot needs every run timed.
TEST(ReportComparison, EarlyValidationsAreOffTheScale) {
    auto run = [](const std::string& name, double start, double end, bool timed) {
        report::NamedRun r{name, name + ".jsonl", {}};
        for (int step = 1; step <= 100; ++step) {
            const double v = end + (start - end) * std::exp(-step / 8.0);
            r.history.loss.step.push_back(step);
            r.history.loss.value.push_back(v);
            r.history.val_bpb.step.push_back(step);
            r.history.val_bpb.value.push_back(step % 10 == 0 ? v : NAN);
            r.history.val_loss.step.push_back(step);
            r.history.val_loss.value.push_back(step % 10 == 0 ? v * std::log(2.0) : NAN);
            r.history.train_seconds.step.push_back(step);
            r.history.train_seconds.value.push_back(timed ? 0.1 * step : NAN);
        }
        return r;
    };
    const std::vector<report::NamedRun> runs = {run("a", 8, 3, true), run("b", 7, 2.5, true)};
    const report::RunFigures f = report::comparison_figures(runs);
    ASSERT_EQ(names(f), (std::vector<std::string>{"validation_vs_steps", "validation_vs_seconds",
                                                  "train_loss_vs_steps"}));
    // Run a's worst value from step 25.75 on is at step 30: 3 + 5·e^(-30/8).
    const double top = 3 + 5 * std::exp(-30 / 8.0);
    size_t shown = 0;
    for (const auto& r : runs)
        for (const double v : r.history.val_bpb.value) shown += !std::isnan(v) && v <= top;
    EXPECT_LT(shown, 20u);
    const std::string svg = f.figures[0].svg.file_svg();
    EXPECT_EQ(count_of(svg, "a at ") + count_of(svg, "b at "), shown);
    EXPECT_NE(f.figures[0].caption.find("off the scale"), std::string::npos);
    EXPECT_EQ(markup_problem(svg), "");
    // One untimed run: no plot against seconds, and the reason is given.
    const report::RunFigures untimed =
        report::comparison_figures({run("a", 8, 3, true), run("b", 7, 2.5, false)});
    EXPECT_EQ(names(untimed),
              (std::vector<std::string>{"validation_vs_steps", "train_loss_vs_steps"}));
    ASSERT_EQ(untimed.missing.size(), 1u);
    EXPECT_NE(untimed.missing[0].find("training seconds"), std::string::npos);
}

}  // namespace
}  // namespace tinygpt
