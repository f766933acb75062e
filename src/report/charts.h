// The charts of the pages `tinygpt experts` (and later `report`) writes: bars, a heatmap and
// lines, each rendered to one Svg (report/svg.h) with its title, axes, a tooltip on every mark,
// and text escaped. The callers give data and labels; the layout (sizes, ticks, thinned labels)
// is decided here.
#pragma once
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "report/svg.h"

namespace tinygpt::report {

// A horizontal line across a bar chart at `value`, labelled at its right end.
struct ReferenceLine {
    double value = 0;
    std::string label;
    std::string colour = "#555555";
};

struct BarChart {
    std::string title, x_label, y_label;
    std::vector<std::string> labels;    // under each bar (some left out when crowded)
    std::vector<double> values;         // one bar each, >= 0
    std::vector<std::string> colours;   // per bar; empty: all series_colour(0)
    std::vector<std::string> tooltips;  // per bar; empty: "label: value"
    std::vector<ReferenceLine> lines;
    bool percent = false;  // values are shares: the axis reads in percent
};

struct Heatmap {
    std::string title, x_label, y_label;
    int rows = 0, cols = 0;
    std::vector<double> values;  // [rows·cols] row-major; NaN: no value (grey, off the scale)
    std::vector<std::string> row_labels, col_labels;
    std::vector<std::string> tooltips;  // per cell; empty: "row, column: value"
    bool percent = false;               // values are shares: labels read in percent
    std::string scale_label;            // what the colour stands for, under the scale
};

struct LineSeries {
    std::string name;
    std::vector<double> x, y;  // a NaN y leaves a gap
};

struct LineChart {
    std::string title, x_label, y_label;
    std::vector<LineSeries> series;                    // coloured series_colour(i)
    std::optional<std::pair<double, double>> y_range;  // else from the data
};

Svg render(const BarChart& chart);
Svg render(const Heatmap& chart);
Svg render(const LineChart& chart);

}  // namespace tinygpt::report
