// The plots and the page of `tinygpt experts`: ExpertStats (analysis/expert_stats.h) drawn with
// the charts of report/charts.h and report/token_strip.h, and laid out as one HTML page
// (report/html.h). The same figures are written as .svg files for papers and READMEs.
#pragma once
#include <string>
#include <vector>

#include "analysis/expert_stats.h"
#include "report/figure.h"
#include "tokenizer/tokenizer.h"

namespace tinygpt::report {

struct ExpertFigures {
    std::vector<Figure> overview;             // over all MoE layers
    std::vector<std::vector<Figure>> layers;  // per MoE layer, in the order of stats.layers
    std::vector<Figure> all() const;
};

ExpertFigures expert_figures(const ExpertStats& stats, const Tokenizer& tokenizer);

struct ExpertPageInfo {
    std::string model;        // the path as given
    std::string description;  // ModelConfig::describe()
    std::string corpus;
    int ctx = 0;  // window length
};

// The whole HTML document.
std::string expert_page(const ExpertStats& stats, const Tokenizer& tokenizer,
                        const ExpertPageInfo& info, const ExpertFigures& figures);

}  // namespace tinygpt::report
