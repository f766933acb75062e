#include "report/svg.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>

#include "tokenizer/utf8.h"

namespace tinygpt::report {

std::string xml_escape(std::string_view text) {
    static constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD
    std::string out;
    out.reserve(text.size());
    for (size_t i = 0; i < text.size();) {
        const auto c = static_cast<unsigned char>(text[i]);
        const size_t len = utf8::valid_sequence_length(text, i);
        if (len == 0) {
            out += kReplacement;
            i += 1;
            continue;
        }
        const std::string_view ch = text.substr(i, len);
        i += len;
        if (ch == "\xEF\xBF\xBE" || ch == "\xEF\xBF\xBF") {  // U+FFFE, U+FFFF
            out += kReplacement;
            continue;
        }
        switch (c) {
            case '&':
                out += "&amp;";
                break;
            case '<':
                out += "&lt;";
                break;
            case '>':
                out += "&gt;";
                break;
            case '"':
                out += "&quot;";
                break;
            case '\'':
                out += "&#39;";
                break;
            case '\t':
            case '\n':
            case '\r':
                out += ch;
                break;
            default:
                if (c < 0x20 || c == 0x7F)
                    out += kReplacement;
                else
                    out += ch;
        }
    }
    return out;
}

std::string format_number(double value) {
    if (std::isnan(value)) return "n/a";
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.3g", value);
    return buf;
}

std::string format_percent(double share) {
    if (std::isnan(share)) return "n/a";
    char buf[32];
    const double p = 100.0 * share;
    std::snprintf(buf, sizeof buf, p != 0 && std::fabs(p) < 0.1 ? "%.2g%%" : "%.1f%%", p);
    return buf;
}

namespace {

std::string hex_colour(double r, double g, double b) {
    auto byte = [](double v) {
        return static_cast<int>(std::lround(std::clamp(v, 0.0, 1.0) * 255));
    };
    char buf[8];
    std::snprintf(buf, sizeof buf, "#%02x%02x%02x", byte(r), byte(g), byte(b));
    return buf;
}

// h in degrees, s and l in [0, 1].
std::string hsl_colour(double h, double s, double l) {
    const double c = (1 - std::fabs(2 * l - 1)) * s;
    const double hp = std::fmod(h, 360.0) / 60.0;
    const double x = c * (1 - std::fabs(std::fmod(hp, 2.0) - 1));
    double r = 0, g = 0, b = 0;
    if (hp < 1)
        r = c, g = x;
    else if (hp < 2)
        r = x, g = c;
    else if (hp < 3)
        g = c, b = x;
    else if (hp < 4)
        g = x, b = c;
    else if (hp < 5)
        r = x, b = c;
    else
        r = c, b = x;
    const double m = l - c / 2;
    return hex_colour(r + m, g + m, b + m);
}

}  // namespace

std::string category_colour(int i, int n) {
    // Evenly spaced hues for a few categories; past 12 the golden angle keeps neighbours apart
    // and two lightness levels double the distinct fills.
    const double hue = n <= 12 ? 360.0 * i / std::max(n, 1) : std::fmod(i * 137.508, 360.0);
    const double lightness = n <= 12 || i % 2 == 0 ? 0.72 : 0.84;
    return hsl_colour(hue + 10, 0.75, lightness);
}

std::string series_colour(int i) {
    static constexpr std::array<const char*, 10> kTableau10 = {
        "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
        "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"};
    return kTableau10[static_cast<size_t>(i) % kTableau10.size()];
}

std::string scale_colour(double t) {
    if (std::isnan(t)) return "#e6e6e6";
    // ColorBrewer YlGnBu.
    static constexpr std::array<std::array<double, 3>, 8> kStops = {{{255, 255, 217},
                                                                     {237, 248, 177},
                                                                     {199, 233, 180},
                                                                     {127, 205, 187},
                                                                     {65, 182, 196},
                                                                     {29, 145, 192},
                                                                     {34, 94, 168},
                                                                     {12, 44, 132}}};
    const double x = std::clamp(t, 0.0, 1.0) * (kStops.size() - 1);
    const size_t i = std::min(static_cast<size_t>(x), kStops.size() - 2);
    const double f = x - static_cast<double>(i);
    double rgb[3];
    for (int k = 0; k < 3; ++k) rgb[k] = ((1 - f) * kStops[i][k] + f * kStops[i + 1][k]) / 255.0;
    return hex_colour(rgb[0], rgb[1], rgb[2]);
}

std::string text_colour_on_scale(double t) {
    return !std::isnan(t) && t > 0.55 ? "#ffffff" : "#222222";
}

namespace {

std::string num(double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1f", v);
    return buf;
}

// `<tag attrs>` closed at once, or holding a tooltip.
std::string close_with_tooltip(const std::string& open, std::string_view tag,
                               std::string_view tooltip) {
    if (tooltip.empty()) return open + "/>\n";
    return open + "><title>" + xml_escape(tooltip) + "</title></" + std::string(tag) + ">\n";
}

}  // namespace

Svg::Svg(double width, double height, std::string_view title)
    : width_(width), height_(height), title_(title) {}

void Svg::rect(double x, double y, double w, double h, std::string_view fill,
               std::string_view tooltip, std::string_view stroke) {
    std::string open = "<rect x=\"" + num(x) + "\" y=\"" + num(y) + "\" width=\"" +
                       num(std::max(w, 0.0)) + "\" height=\"" + num(std::max(h, 0.0)) +
                       "\" fill=\"" + xml_escape(fill) + "\"";
    if (!stroke.empty()) open += " stroke=\"" + xml_escape(stroke) + "\"";
    body_ += close_with_tooltip(open, "rect", tooltip);
}

void Svg::line(double x1, double y1, double x2, double y2, std::string_view stroke, double width,
               std::string_view dash) {
    body_ += "<line x1=\"" + num(x1) + "\" y1=\"" + num(y1) + "\" x2=\"" + num(x2) + "\" y2=\"" +
             num(y2) + "\" stroke=\"" + xml_escape(stroke) + "\" stroke-width=\"" + num(width) +
             "\"";
    if (!dash.empty()) body_ += " stroke-dasharray=\"" + xml_escape(dash) + "\"";
    body_ += "/>\n";
}

void Svg::polyline(const std::vector<std::pair<double, double>>& points, std::string_view stroke,
                   double width) {
    body_ += "<polyline fill=\"none\" stroke=\"" + xml_escape(stroke) + "\" stroke-width=\"" +
             num(width) + "\" points=\"";
    for (const auto& [x, y] : points) body_ += num(x) + "," + num(y) + " ";
    body_ += "\"/>\n";
}

void Svg::circle(double cx, double cy, double r, std::string_view fill, std::string_view tooltip) {
    const std::string open = "<circle cx=\"" + num(cx) + "\" cy=\"" + num(cy) + "\" r=\"" + num(r) +
                             "\" fill=\"" + xml_escape(fill) + "\"";
    body_ += close_with_tooltip(open, "circle", tooltip);
}

void Svg::text(double x, double y, std::string_view text, const TextStyle& style,
               std::string_view tooltip) {
    std::string open = "<text x=\"" + num(x) + "\" y=\"" + num(y) + "\" font-size=\"" +
                       num(style.size) + "\" text-anchor=\"" + style.anchor + "\" fill=\"" +
                       style.fill + "\"";
    open += style.monospace
                ? " font-family=\"monospace\" xml:space=\"preserve\" style=\"white-space:pre\""
                : " font-family=\"sans-serif\"";
    if (style.bold) open += " font-weight=\"bold\"";
    if (style.rotate != 0)
        open += " transform=\"rotate(" + num(style.rotate) + " " + num(x) + " " + num(y) + ")\"";
    open += ">";
    if (!tooltip.empty()) open += "<title>" + xml_escape(tooltip) + "</title>";
    body_ += open + xml_escape(text) + "</text>\n";
}

std::string Svg::element(bool standalone) const {
    std::string out = "<svg";
    if (standalone) out += " xmlns=\"http://www.w3.org/2000/svg\"";
    out += " width=\"" + num(width_) + "\" height=\"" + num(height_) + "\" viewBox=\"0 0 " +
           num(width_) + " " + num(height_) + "\" role=\"img\">\n<title>" + xml_escape(title_) +
           "</title>\n<rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>\n";
    return out + body_ + "</svg>\n";
}

std::string Svg::inline_svg() const {
    return element(false);
}

std::string Svg::file_svg() const {
    return "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n" + element(true);
}

}  // namespace tinygpt::report
