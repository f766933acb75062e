#include "report/token_strip.h"

#include <algorithm>

namespace tinygpt::report {

namespace {

constexpr double kStripWidth = 720, kMargin = 12;
constexpr double kFontSize = 13, kCharWidth = 0.6 * kFontSize;  // monospace advance
constexpr double kLineHeight = 21;

// Characters (code points) of valid UTF-8 text: how many monospace cells it takes.
size_t code_points(const std::string& text) {
    return static_cast<size_t>(std::count_if(text.begin(), text.end(), [](char c) {
        return (static_cast<unsigned char>(c) & 0xC0) != 0x80;
    }));
}

struct Placed {
    double x, y, w;
};

// Wraps the tokens into lines of the chart's width; a token never splits.
std::vector<Placed> layout(const TokenStrip& strip, double top, double* bottom) {
    std::vector<Placed> placed;
    double x = kMargin, y = top;
    for (size_t i = 0; i < strip.pieces.size(); ++i) {
        const double w =
            static_cast<double>(std::max<size_t>(code_points(strip.pieces[i]), 1)) * kCharWidth;
        if (x > kMargin && x + w > kStripWidth - kMargin) x = kMargin, y += kLineHeight;
        placed.push_back({x, y, w});
        x += w + 1;
        if (i < strip.break_after.size() && strip.break_after[i]) x = kMargin, y += kLineHeight;
    }
    *bottom = y + kLineHeight;
    return placed;
}

}  // namespace

Svg render(const TokenStrip& strip) {
    const int n = static_cast<int>(strip.categories.size());
    // Legend first: swatches in rows of up to 12.
    const int per_row = 12, legend_rows = (n + per_row - 1) / per_row;
    const double legend_top = 36, text_top = legend_top + 20.0 * legend_rows + 10;
    double bottom = 0;
    const std::vector<Placed> placed = layout(strip, text_top, &bottom);
    Svg svg(kStripWidth, bottom + kMargin, strip.title);
    svg.text(kMargin, 20, strip.title, {14, "start", 0, true});
    for (int c = 0; c < n; ++c) {
        const double x = kMargin + (kStripWidth - 2 * kMargin) / per_row * (c % per_row);
        const double y = legend_top + 20.0 * (c / per_row);
        svg.rect(x, y, 14, 14, category_colour(c, n), strip.categories[c]);
        svg.text(x + 18, y + 11, strip.categories[c], {11});
    }
    TextStyle text{kFontSize};
    text.monospace = true;
    for (size_t i = 0; i < placed.size(); ++i) {
        const int c = i < strip.category.size() ? strip.category[i] : -1;
        const std::string& tooltip =
            i < strip.tooltips.size() ? strip.tooltips[i] : strip.pieces[i];
        const Placed& p = placed[i];
        svg.rect(p.x, p.y - kFontSize, p.w, kLineHeight - 3,
                 c >= 0 && c < n ? category_colour(c, n) : "#eeeeee", tooltip);
        svg.text(p.x, p.y + 1, strip.pieces[i], text, tooltip);
    }
    return svg;
}

}  // namespace tinygpt::report
