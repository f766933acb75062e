#include "report/figure.h"

#include <filesystem>

#include "io/atomic_write.h"
#include "util/error.h"

namespace tinygpt::report {

void write_svg_files(const std::string& dir, const std::vector<Figure>& figures) {
    namespace fs = std::filesystem;
    std::error_code ec;
    if (fs::exists(dir, ec) && !fs::is_directory(dir, ec)) throw Error(dir + ": not a directory");
    fs::create_directories(dir, ec);
    if (ec) throw Error(dir + ": cannot create the directory (" + ec.message() + ")");
    for (const Figure& f : figures) {
        io::atomic_write_text((fs::path(dir) / (f.name + ".svg")).string(), f.svg.file_svg());
    }
}

}  // namespace tinygpt::report
