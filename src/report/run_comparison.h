// `tinygpt report RUN RUN ... --html FILE`: several training runs on one page, each curve one
// run: validation against steps and against training seconds (in bits per byte where every
// run's log has it, else in nats per token), and the training loss. For comparing recipes on
// the same data (docs/EXPERIMENTS.md).
#pragma once
#include <string>
#include <vector>

#include "report/run_report.h"

namespace tinygpt::report {

struct NamedRun {
    std::string name;   // the legend's label
    std::string input;  // the path as given
    RunHistory history;
};

RunFigures comparison_figures(const std::vector<NamedRun>& runs);

// The whole HTML document: a table of each run's final and best validation and training time,
// then the figures.
std::string comparison_page(const std::vector<NamedRun>& runs, const RunFigures& figures);

}  // namespace tinygpt::report
