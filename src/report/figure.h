// A plot with a name: shown on a page (report/html.h) and written, for papers and READMEs, as
// its own .svg file.
#pragma once
#include <string>
#include <vector>

#include "report/svg.h"

namespace tinygpt::report {

struct Figure {
    std::string name;     // the file's stem: letters, digits, '_' and '-' ("layer03_load")
    std::string caption;  // what the plot shows, under it on the page
    Svg svg;
};

// Writes each figure to DIR/<name>.svg, crash-safe (io/atomic_write.h); creates DIR if missing.
// Error (naming the path) when DIR is not a directory or a file cannot be written.
void write_svg_files(const std::string& dir, const std::vector<Figure>& figures);

}  // namespace tinygpt::report
