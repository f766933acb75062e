// One self-contained HTML page: headings, text, tables, figures (inline SVG) and collapsible
// sections, with its style inline. No scripts, fonts, images or links to anything outside it,
// so the file opens offline and can be mailed. Every text given is escaped.
#pragma once
#include <string>
#include <string_view>
#include <vector>

#include "report/figure.h"

namespace tinygpt::report {

class HtmlPage {
  public:
    explicit HtmlPage(std::string_view title);

    void heading(int level, std::string_view text);  // level 1–4
    void paragraph(std::string_view text);
    // Cells are text; a `numeric` column is right-aligned.
    void table(const std::vector<std::string>& header,
               const std::vector<std::vector<std::string>>& rows,
               const std::vector<bool>& numeric = {});
    void figure(const Figure& figure);
    // A section the reader can fold (<details>), open or closed at first.
    void begin_section(std::string_view summary, bool open);
    void end_section();

    std::string str() const;  // the whole document

  private:
    std::string title_, body_;
    int open_sections_ = 0;
};

}  // namespace tinygpt::report
