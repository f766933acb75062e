// A passage shown token by token, each token's text on a background coloured by its category
// (`experts`: the expert a layer's router put first), wrapped into lines, with a legend and a
// tooltip on every token. Monospace text, so the layout needs no font metrics.
#pragma once
#include <string>
#include <vector>

#include "report/svg.h"

namespace tinygpt::report {

struct TokenStrip {
    std::string title;
    std::vector<std::string> pieces;      // each token's text as shown (printable)
    std::vector<int> category;            // per token, in [0, categories.size()); −1: none
    std::vector<bool> break_after;        // start a new line after the token (it held a newline)
    std::vector<std::string> tooltips;    // per token; empty: the piece
    std::vector<std::string> categories;  // legend names; colours are category_colour(i, n)
};

Svg render(const TokenStrip& strip);

}  // namespace tinygpt::report
