#include "report/html.h"

#include "util/error.h"

namespace tinygpt::report {

namespace {

constexpr const char* kStyle =
    R"(body { font-family: sans-serif; margin: 24px auto; max-width: 980px; color: #222; }
h1 { font-size: 22px; } h2 { font-size: 18px; margin-top: 28px; } h3 { font-size: 15px; }
p { line-height: 1.45; }
table { border-collapse: collapse; margin: 12px 0; font-size: 13px; }
th, td { border-bottom: 1px solid #ddd; padding: 3px 8px; text-align: left; vertical-align: top; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td code, th code { white-space: pre; }
figure { margin: 16px 0; } figcaption { font-size: 13px; color: #555; max-width: 720px; }
details { margin: 12px 0; border-top: 1px solid #ccc; padding-top: 6px; }
summary { font-weight: bold; font-size: 16px; cursor: pointer; }
)";

}  // namespace

HtmlPage::HtmlPage(std::string_view title) : title_(title) {}

void HtmlPage::heading(int level, std::string_view text) {
    require(level >= 1 && level <= 4, "heading level must be 1 to 4");
    const std::string tag = {'h', static_cast<char>('0' + level)};
    body_ += "<" + tag + ">" + xml_escape(text) + "</" + tag + ">\n";
}

void HtmlPage::paragraph(std::string_view text) {
    body_ += "<p>" + xml_escape(text) + "</p>\n";
}

void HtmlPage::table(const std::vector<std::string>& header,
                     const std::vector<std::vector<std::string>>& rows,
                     const std::vector<bool>& numeric) {
    body_ += "<table>\n<tr>";
    for (const std::string& h : header) body_ += "<th>" + xml_escape(h) + "</th>";
    body_ += "</tr>\n";
    for (const auto& row : rows) {
        body_ += "<tr>";
        for (size_t c = 0; c < row.size(); ++c) {
            const bool num = c < numeric.size() && numeric[c];
            body_ += (num ? "<td class=\"num\">" : "<td>") + xml_escape(row[c]) + "</td>";
        }
        body_ += "</tr>\n";
    }
    body_ += "</table>\n";
}

void HtmlPage::figure(const Figure& figure) {
    body_ += "<figure id=\"" + xml_escape(figure.name) + "\">\n" + figure.svg.inline_svg() +
             "<figcaption>" + xml_escape(figure.caption) + "</figcaption>\n</figure>\n";
}

void HtmlPage::begin_section(std::string_view summary, bool open) {
    body_ += open ? "<details open>" : "<details>";
    body_ += "<summary>" + xml_escape(summary) + "</summary>\n";
    ++open_sections_;
}

void HtmlPage::end_section() {
    require(open_sections_ > 0, "end_section() without begin_section()");
    body_ += "</details>\n";
    --open_sections_;
}

std::string HtmlPage::str() const {
    std::string closing;
    for (int i = 0; i < open_sections_; ++i) closing += "</details>\n";
    return "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>" +
           xml_escape(title_) + "</title>\n<style>\n" + kStyle + "</style>\n</head>\n<body>\n" +
           body_ + closing + "</body>\n</html>\n";
}

}  // namespace tinygpt::report
