// The plotting code of the pages (src/report/): escaping of hostile text, the charts and the
// page are well-formed and hold the marks they should, and the files stand alone.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "markup_check.h"
#include "report/charts.h"
#include "report/html.h"
#include "report/svg.h"
#include "report/token_strip.h"

namespace tinygpt::report {
namespace {

using test::count_of;
using test::markup_problem;

// Text a token can hold: markup, entities, quotes, control bytes, invalid and odd UTF-8.
const std::string kHostile = std::string("</svg><script>alert(\"x\" & 'y')</script>&amp;\x01\x1B") +
                             "\xFF\xC3\x28 \xE2\x82 \xEF\xBF\xBF ]]> \xC3\xA9";

TEST(Report, XmlEscapeLeavesNoMarkupAndValidUtf8) {
    const std::string e = xml_escape(kHostile);
    EXPECT_EQ(e.find('<'), std::string::npos);
    EXPECT_EQ(e.find('>'), std::string::npos);
    EXPECT_EQ(e.find('"'), std::string::npos);
    EXPECT_EQ(e.find('\''), std::string::npos);
    EXPECT_EQ(e.find('\x01'), std::string::npos);
    EXPECT_EQ(e.find('\x1B'), std::string::npos);
    EXPECT_EQ(e.find("\xEF\xBF\xBF"), std::string::npos) << "U+FFFF is not allowed in XML";
    EXPECT_EQ(markup_problem(e), "");
    EXPECT_NE(e.find("&amp;amp;"), std::string::npos) << "an entity in the text stays text";
    EXPECT_NE(e.find("\xC3\xA9"), std::string::npos) << "valid UTF-8 stays";
    EXPECT_EQ(xml_escape("a\tb\nc"), "a\tb\nc");
    // Replacement characters for each bad byte: \x01, \x1B, \xFF, \xC3 (before '('), \xE2, \x82
    // (half a character: one each), U+FFFF.
    EXPECT_EQ(count_of(e, "\xEF\xBF\xBD"), 7u);
}

TEST(Report, NumbersAndColours) {
    EXPECT_EQ(format_number(0.125), "0.125");
    EXPECT_EQ(format_number(std::nan("")), "n/a");
    EXPECT_EQ(format_percent(0.125), "12.5%");
    EXPECT_EQ(format_percent(0.0004), "0.04%");
    EXPECT_EQ(format_percent(0), "0.0%");
    EXPECT_NE(category_colour(0, 8), category_colour(1, 8));
    EXPECT_NE(category_colour(0, 64), category_colour(1, 64));
    EXPECT_EQ(scale_colour(0).size(), 7u);
    EXPECT_NE(scale_colour(0), scale_colour(1));
    EXPECT_EQ(scale_colour(2), scale_colour(1)) << "clamped";
}

TEST(Report, ChartsAreWellFormedAndDrawEveryMark) {
    BarChart bars;
    bars.title = kHostile;
    bars.labels = {"0", "1", kHostile};
    bars.values = {0.5, 0.25, 0.25};
    bars.lines = {{1.0 / 3, kHostile}};
    bars.percent = true;
    const Svg b = render(bars);
    EXPECT_EQ(markup_problem(b.inline_svg()), "") << b.inline_svg();
    EXPECT_EQ(count_of(b.inline_svg(), "<rect"), 1u + 3u) << "the background and three bars";

    Heatmap heat;
    heat.title = "heat";
    heat.rows = 2;
    heat.cols = 3;
    heat.values = {0, 1, 2, 3, std::numeric_limits<double>::quiet_NaN(), 5};
    heat.row_labels = {"a", kHostile};
    heat.col_labels = {"x", "y", "z"};
    const Svg h = render(heat);
    EXPECT_EQ(markup_problem(h.inline_svg()), "") << h.inline_svg();
    EXPECT_GE(count_of(h.inline_svg(), "<rect"), 1u + 6u);
    EXPECT_NE(h.inline_svg().find(scale_colour(std::nan(""))), std::string::npos)
        << "the NaN cell is grey";

    LineChart lines;
    lines.title = "lines";
    lines.series = {{"a", {0, 1, 2, 3}, {0.1, 0.5, std::nan(""), 0.7}}, {kHostile, {0, 3}, {1, 0}}};
    const Svg l = render(lines);
    EXPECT_EQ(markup_problem(l.inline_svg()), "") << l.inline_svg();
    EXPECT_EQ(count_of(l.inline_svg(), "<circle"), 3u + 2u) << "a marker per finite point";
    EXPECT_EQ(count_of(l.inline_svg(), "<polyline"), 1u + 1u) << "the NaN breaks series a";

    TokenStrip strip;
    strip.title = "strip";
    strip.pieces = {"Hello", kHostile, "\\n", "x"};
    strip.category = {0, 1, -1, 1};
    strip.break_after = {false, false, true, false};
    strip.categories = {"expert 0", "expert 1"};
    const Svg s = render(strip);
    EXPECT_EQ(markup_problem(s.inline_svg()), "") << s.inline_svg();
    EXPECT_EQ(count_of(s.inline_svg(), "<text"), 1u + 2u + 4u) << "title, legend, tokens";

    // Empty data draws frames, not garbage.
    for (const Svg& empty :
         {render(BarChart{}), render(Heatmap{}), render(LineChart{}), render(TokenStrip{})})
        EXPECT_EQ(markup_problem(empty.inline_svg()), "");
}

TEST(Report, FilesAndPagesStandAlone) {
    BarChart bars;
    bars.title = "t";
    bars.labels = {"a"};
    bars.values = {1};
    const Figure f{"bars", kHostile, render(bars)};
    const std::string file = f.svg.file_svg();
    EXPECT_EQ(file.rfind("<?xml", 0), 0u);
    EXPECT_NE(file.find("xmlns=\"http://www.w3.org/2000/svg\""), std::string::npos);
    EXPECT_EQ(markup_problem(file), "");

    HtmlPage page(kHostile);
    page.heading(1, kHostile);
    page.paragraph(kHostile);
    page.table({"a", kHostile}, {{"1", kHostile}, {"2", "3"}}, {true, false});
    page.begin_section(kHostile, true);
    page.figure(f);
    page.end_section();
    page.begin_section("left open", false);  // str() closes it
    const std::string html = page.str();
    EXPECT_EQ(markup_problem(html), "") << html;
    EXPECT_EQ(html.rfind("<!DOCTYPE html>", 0), 0u);
    EXPECT_EQ(html.find("<script"), std::string::npos);
    EXPECT_EQ(html.find("http"), std::string::npos) << "inline SVG needs no namespace URL";
    EXPECT_EQ(count_of(html, "<svg"), 1u);
    EXPECT_EQ(count_of(html, "<details"), 2u);
}

}  // namespace
}  // namespace tinygpt::report
