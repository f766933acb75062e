// SVG written as text, for the plots of `tinygpt experts` (and later `report`): an element
// builder that escapes every piece of text it is given, number formats, and the colour scales
// the charts share. Nothing here refers to anything outside the document: no fonts, images or
// scripts, so a page of these opens offline.
#pragma once
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tinygpt::report {

// Text for XML/HTML content and attribute values: & < > " ' escaped; bytes that are not valid
// UTF-8 and characters XML 1.0 does not allow (control characters other than tab, newline and
// carriage return; U+FFFE, U+FFFF) become U+FFFD, so any token text gives a well-formed document.
std::string xml_escape(std::string_view text);

std::string format_number(
    double value);  // 3 significant digits ("0.125", "1.5e+03"); "n/a" for NaN
std::string format_percent(double share);  // "12.5%" (share 0.125); "n/a" for NaN

// Fill colours for n categories (the experts): distinct hues, light enough to carry dark text.
std::string category_colour(int i, int n);
// Stroke colours for a few series (lines): dark and distinct (Tableau 10, then repeating).
std::string series_colour(int i);
// A sequential scale from light (t = 0) to dark blue (t = 1); NaN gives light grey.
std::string scale_colour(double t);
// Dark or white text on scale_colour(t), whichever reads.
std::string text_colour_on_scale(double t);

struct TextStyle {
    double size = 12;
    const char* anchor = "start";  // start, middle, end
    double rotate = 0;             // degrees about the anchor point
    bool bold = false;
    bool monospace = false;
    const char* fill = "#222";
};

// One <svg> element, built element by element. Every text and tooltip is escaped here.
class Svg {
  public:
    Svg() = default;
    // `title`: the accessible name (a <title> child), also what a viewer shows for the file.
    Svg(double width, double height, std::string_view title);

    void rect(double x, double y, double w, double h, std::string_view fill,
              std::string_view tooltip = {}, std::string_view stroke = {});
    void line(double x1, double y1, double x2, double y2, std::string_view stroke, double width = 1,
              std::string_view dash = {});
    void polyline(const std::vector<std::pair<double, double>>& points, std::string_view stroke,
                  double width = 2);
    void circle(double cx, double cy, double r, std::string_view fill,
                std::string_view tooltip = {});
    void text(double x, double y, std::string_view text, const TextStyle& style = {},
              std::string_view tooltip = {});

    double width() const { return width_; }
    double height() const { return height_; }
    // The element for an HTML page (no namespace needed there).
    std::string inline_svg() const;
    // A standalone .svg file: XML declaration and the SVG namespace.
    std::string file_svg() const;

  private:
    std::string element(bool standalone) const;
    double width_ = 0, height_ = 0;
    std::string title_, body_;
};

}  // namespace tinygpt::report
