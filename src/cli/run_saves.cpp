#include "cli/run_saves.h"

#include <cstdio>
#include <filesystem>

#include "util/error.h"

namespace tinygpt::cli {

RunSaves::RunSaves(std::string path) : path_(std::move(path)) {
    std::error_code ec;
    existed_before_ = std::filesystem::is_regular_file(path_, ec);
}

std::string RunSaves::last_good() const {
    if (last_good_step_ >= 0)
        return "the last good file is '" + path_ + "' (step " + std::to_string(last_good_step_) +
               ")";
    if (existed_before_)
        return "'" + path_ +
               "' still holds what it held before this run (no save of this run "
               "succeeded)";
    return "there is no saved file (no save of this run succeeded)";
}

void RunSaves::periodic(int64_t step, int64_t next_step, const std::function<void()>& save) {
    try {
        save();
        last_good_step_ = step;
    } catch (const Error& e) {
        ++failures_;
        const std::string retry = next_step > 0
                                      ? "trying again at step " + std::to_string(next_step)
                                      : "trying again at the end";
        std::fflush(stdout);
        std::fprintf(stderr, "warning: saving step %lld failed: %s; training goes on, %s; %s\n",
                     static_cast<long long>(step), e.what(), retry.c_str(), last_good().c_str());
        std::fflush(stderr);
    }
}

void RunSaves::final(int64_t step, const std::function<void()>& save) {
    try {
        save();
        last_good_step_ = step;
    } catch (const Error& e) {
        throw Error("the final save (step " + std::to_string(step) + ") failed: " + e.what() +
                    "; " + last_good());
    }
}

}  // namespace tinygpt::cli
