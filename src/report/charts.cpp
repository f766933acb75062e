#include "report/charts.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <tuple>

namespace tinygpt::report {

namespace {

constexpr double kWidth = 720;
constexpr double kTitleHeight = 30;
constexpr TextStyle kTitleStyle{14, "start", 0, true};
constexpr TextStyle kTickStyle{11, "end"};
constexpr const char* kAxisColour = "#444444";
constexpr const char* kGridColour = "#e4e4e4";

// A round step (1, 2 or 5 × 10^k) that cuts [lo, hi] into about `target` parts.
double nice_step(double lo, double hi, int target) {
    if (!(hi > lo)) hi = lo + 1;
    const double raw = (hi - lo) / target;
    const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
    const double norm = raw / magnitude;
    return (norm < 1.5 ? 1 : norm < 3 ? 2 : norm < 7 ? 5 : 10) * magnitude;
}

// The multiples of nice_step in [lo, hi]; whole numbers only when `whole` (layers, steps).
std::vector<double> nice_ticks(double lo, double hi, int target = 5, bool whole = false) {
    double step = nice_step(lo, hi, target);
    if (whole) step = std::max(1.0, std::round(step));
    std::vector<double> ticks;
    for (double v = std::ceil(lo / step - 1e-9) * step; v <= hi + step * 1e-9; v += step)
        ticks.push_back(std::fabs(v) < step * 1e-9 ? 0.0 : v);
    return ticks;
}

// The top of a value axis from 0: the first round tick at or above `max`.
double axis_top(double max) {
    if (!(max > 0)) return 1;
    const double step = nice_step(0, max, 5);
    return std::ceil(max / step - 1e-9) * step;
}

std::string tick_label(double v, bool percent) {
    if (percent) return format_percent(v);
    char buf[32];
    if (std::fabs(v) >= 1 && std::fabs(v) < 1e7 && v == std::floor(v))
        std::snprintf(buf, sizeof buf, "%.0f", v);
    else
        std::snprintf(buf, sizeof buf, "%.3g", v);
    return buf;
}

std::string value_label(double v, bool percent) {
    return percent ? format_percent(v) : format_number(v);
}

// Shows every k-th of n labels so that shown labels are at least `min_gap` pixels apart.
int label_stride(double spacing, double min_gap) {
    return spacing >= min_gap ? 1 : static_cast<int>(std::ceil(min_gap / spacing));
}

// Plot area inside the frame of a chart with a value axis.
struct Frame {
    double left = 64, right = kWidth - 24, top = kTitleHeight + 16, bottom = 0;
};

// Title, horizontal grid lines with value ticks at the left, and both axis labels.
void draw_value_axes(Svg& svg, const Frame& f, const std::string& title, double lo, double hi,
                     bool percent, const std::string& x_label, const std::string& y_label) {
    svg.text(12, 20, title, kTitleStyle);
    for (const double v : nice_ticks(lo, hi)) {
        const double y = f.bottom - (v - lo) / (hi - lo) * (f.bottom - f.top);
        svg.line(f.left, y, f.right, y, kGridColour);
        svg.text(f.left - 6, y + 4, tick_label(v, percent), kTickStyle);
    }
    svg.line(f.left, f.bottom, f.right, f.bottom, kAxisColour);
    svg.line(f.left, f.top, f.left, f.bottom, kAxisColour);
    svg.text((f.left + f.right) / 2, svg.height() - 8, x_label, {12, "middle"});
    svg.text(16, (f.top + f.bottom) / 2, y_label, {12, "middle", -90});
}

}  // namespace

Svg render(const BarChart& chart) {
    const size_t n = chart.values.size();
    Svg svg(kWidth, 320, chart.title);
    Frame f;
    f.bottom = svg.height() - 52;
    double max = 0;
    for (const double v : chart.values) max = std::max(max, v);
    for (const ReferenceLine& r : chart.lines) max = std::max(max, r.value);
    const double top = axis_top(max);
    draw_value_axes(svg, f, chart.title, 0, top, chart.percent, chart.x_label, chart.y_label);
    const double band = (f.right - f.left) / std::max<size_t>(n, 1);
    const int stride = label_stride(band, 26);
    for (size_t i = 0; i < n; ++i) {
        const double h = chart.values[i] / top * (f.bottom - f.top);
        const double x = f.left + band * static_cast<double>(i);
        const std::string& label = i < chart.labels.size() ? chart.labels[i] : "";
        const std::string tooltip =
            i < chart.tooltips.size() ? chart.tooltips[i]
                                      : label + ": " + value_label(chart.values[i], chart.percent);
        const std::string colour = i < chart.colours.size() ? chart.colours[i] : series_colour(0);
        svg.rect(x + band * 0.1, f.bottom - h, band * 0.8, h, colour, tooltip);
        if (i % stride == 0) svg.text(x + band / 2, f.bottom + 15, label, {11, "middle"});
    }
    for (const ReferenceLine& r : chart.lines) {
        const double y = f.bottom - r.value / top * (f.bottom - f.top);
        svg.line(f.left, y, f.right, y, r.colour, 1.5, "6 4");
        svg.text(f.right, y - 4, r.label, {11, "end", 0, false, false, "#333"});
    }
    return svg;
}

Svg render(const Heatmap& chart) {
    const int rows = chart.rows, cols = chart.cols;
    const double cell = std::clamp(std::floor(560.0 / std::max(cols, 1)), 8.0, 40.0);
    // Rows stay tall enough for their labels unless there are many (an E×E matrix).
    const double cell_h = rows <= 16 ? std::max(cell, 16.0) : cell;
    size_t longest = 0;
    for (const std::string& label : chart.row_labels) longest = std::max(longest, label.size());
    const double left = 40 + 7.0 * static_cast<double>(std::min<size_t>(longest, 16));
    const double top = kTitleHeight + 40;
    const double grid_w = cell * cols, grid_h = cell_h * rows;
    const double width = std::max(kWidth, left + grid_w + 24);
    Svg svg(width, top + grid_h + 96, chart.title);
    svg.text(12, 20, chart.title, kTitleStyle);

    double max = 0;
    for (const double v : chart.values)
        if (!std::isnan(v)) max = std::max(max, v);
    auto scaled = [&](double v) { return std::isnan(v) ? v : max > 0 ? v / max : 0.0; };
    const bool annotate = cell >= 34;
    for (int r = 0; r < rows; ++r)
        for (int c = 0; c < cols; ++c) {
            const size_t i = static_cast<size_t>(r) * cols + c;
            const double v = chart.values[i];
            const std::string& row =
                r < static_cast<int>(chart.row_labels.size()) ? chart.row_labels[r] : "";
            const std::string& col =
                c < static_cast<int>(chart.col_labels.size()) ? chart.col_labels[c] : "";
            const std::string tooltip =
                i < chart.tooltips.size() ? chart.tooltips[i]
                                          : row + ", " + col + ": " + value_label(v, chart.percent);
            const double x = left + cell * c, y = top + cell_h * r;
            svg.rect(x, y, cell, cell_h, scale_colour(scaled(v)), tooltip, "#ffffff");
            if (annotate && !std::isnan(v)) {
                TextStyle style{10, "middle"};
                const std::string colour = text_colour_on_scale(scaled(v));
                style.fill = colour.c_str();
                svg.text(x + cell / 2, y + cell_h / 2 + 4, value_label(v, chart.percent), style);
            }
        }
    const int row_stride = label_stride(cell_h, 13), col_stride = label_stride(cell, 14);
    for (int r = 0; r < rows; r += row_stride)
        if (r < static_cast<int>(chart.row_labels.size()))
            svg.text(left - 6, top + cell_h * r + cell_h / 2 + 4, chart.row_labels[r], kTickStyle);
    for (int c = 0; c < cols; c += col_stride)
        if (c < static_cast<int>(chart.col_labels.size()))
            svg.text(left + cell * c + cell / 2 + 4, top - 6, chart.col_labels[c],
                     {11, "start", -60});
    svg.text(left + grid_w / 2, top + grid_h + 22, chart.x_label, {12, "middle"});
    svg.text(14, top + grid_h / 2, chart.y_label, {12, "middle", -90});

    // The colour scale, 0 to the largest value.
    const double scale_y = top + grid_h + 40, scale_w = std::min(240.0, width - left - 24);
    constexpr int kSteps = 24;
    for (int s = 0; s < kSteps; ++s)
        svg.rect(left + scale_w * s / kSteps, scale_y, scale_w / kSteps + 0.5, 12,
                 scale_colour((s + 0.5) / kSteps));
    svg.text(left, scale_y + 26, value_label(0, chart.percent), {11, "start"});
    svg.text(left + scale_w, scale_y + 26, value_label(max, chart.percent), {11, "end"});
    svg.text(left + scale_w + 12, scale_y + 10, chart.scale_label, {11, "start"});
    return svg;
}

Svg render(const LineChart& chart) {
    Svg svg(kWidth, 320, chart.title);
    Frame f;
    f.right = kWidth - 170;  // room for the legend
    f.bottom = svg.height() - 48;
    double x_lo = INFINITY, x_hi = -INFINITY, y_lo = INFINITY, y_hi = -INFINITY;
    for (const LineSeries& s : chart.series)
        for (size_t i = 0; i < s.x.size() && i < s.y.size(); ++i) {
            x_lo = std::min(x_lo, s.x[i]);
            x_hi = std::max(x_hi, s.x[i]);
            if (std::isnan(s.y[i])) continue;
            y_lo = std::min(y_lo, s.y[i]);
            y_hi = std::max(y_hi, s.y[i]);
        }
    if (!(x_hi >= x_lo)) x_lo = 0, x_hi = 1;
    if (x_hi == x_lo) x_lo -= 0.5, x_hi += 0.5;
    if (chart.y_range) std::tie(y_lo, y_hi) = *chart.y_range;
    if (!(y_hi >= y_lo)) y_lo = 0, y_hi = 1;
    if (y_hi == y_lo) y_lo -= 0.5, y_hi += 0.5;
    draw_value_axes(svg, f, chart.title, y_lo, y_hi, false, chart.x_label, chart.y_label);
    auto px = [&](double x) { return f.left + (x - x_lo) / (x_hi - x_lo) * (f.right - f.left); };
    auto py = [&](double y) { return f.bottom - (y - y_lo) / (y_hi - y_lo) * (f.bottom - f.top); };
    bool whole_x = true;
    for (const LineSeries& s : chart.series)
        for (const double x : s.x) whole_x = whole_x && x == std::floor(x);
    for (const double x : nice_ticks(x_lo, x_hi, 8, whole_x)) {
        svg.line(px(x), f.bottom, px(x), f.bottom + 4, kAxisColour);
        svg.text(px(x), f.bottom + 16, tick_label(x, false), {11, "middle"});
    }
    for (size_t k = 0; k < chart.series.size(); ++k) {
        const LineSeries& s = chart.series[k];
        const std::string colour = series_colour(static_cast<int>(k));
        std::vector<std::pair<double, double>> run;
        for (size_t i = 0; i <= s.x.size() && i <= s.y.size(); ++i) {
            const bool point = i < s.x.size() && i < s.y.size() && !std::isnan(s.y[i]);
            if (point) run.emplace_back(px(s.x[i]), py(s.y[i]));
            if (point && i + 1 < s.x.size()) continue;
            if (run.size() > 1) svg.polyline(run, colour);
            run.clear();
        }
        for (size_t i = 0; i < s.x.size() && i < s.y.size(); ++i)
            if (!std::isnan(s.y[i]))
                svg.circle(
                    px(s.x[i]), py(s.y[i]), 3.5, colour,
                    s.name + " at " + tick_label(s.x[i], false) + ": " + format_number(s.y[i]));
        const double ly = f.top + 18.0 * static_cast<double>(k);
        svg.line(f.right + 16, ly, f.right + 36, ly, colour, 3);
        svg.text(f.right + 42, ly + 4, s.name, {11, "start"});
    }
    return svg;
}

}  // namespace tinygpt::report
