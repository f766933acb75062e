#include "cli/common_flags.h"

#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "dist/communicator.h"
#include "util/error.h"
#include "util/parallel.h"
#include "util/sysinfo.h"

namespace tinygpt::cli {

void apply_threads_flag(int threads) {
    if (threads < 0) throw Error("--threads must be >= 0 (got " + std::to_string(threads) + ")");
    const int cores = processor_count();
    if (threads == 0 && cores > 1 && !std::getenv("OMP_NUM_THREADS")) {
        // Ranks of one run on this machine (mpirun -np N) share its cores.
        if (const int local_ranks = ranks_on_this_machine(); local_ranks > 1)
            set_num_threads(std::max(1, cores / local_ranks));
        return;
    }
    if (threads > cores) {
        std::fprintf(stderr, "warning: --threads %d is more than the %d cores; using %d\n", threads,
                     cores, cores);
        threads = cores;
    }
    set_num_threads(threads);
}

void apply_decode_threads_flag(int threads, GenerateOptions& options) {
    if (threads > 0)
        options.decode_threads = num_threads();
    else if (!std::getenv("OMP_NUM_THREADS"))
        options.decode_thread_limit = processor_count();
}

CLI::Validator seed_validator() {
    return CLI::Validator(
        [](std::string& text) -> std::string {
            uint64_t value = 0;
            const char* end = text.data() + text.size();
            const auto [ptr, ec] = std::from_chars(text.data(), end, value);
            if (text.empty() || ec != std::errc() || ptr != end)
                return "must be an integer from 0 to 18446744073709551615 (got '" + text + "')";
            return "";
        },
        "UINT64");
}

CLI::Validator non_empty_path() {
    return CLI::Validator(
        [](std::string& text) -> std::string {
            return text.empty() ? "the file name is empty" : "";
        },
        "PATH");
}

void check_writable_target(const std::string& path, const std::string& flag) {
    namespace fs = std::filesystem;
    const fs::path target(path);
    const std::string named = flag + " '" + path + "'";
    std::error_code ec;
    if (fs::is_directory(target, ec)) throw Error(named + " is a directory");
    if (fs::exists(target, ec) && !fs::is_regular_file(target, ec))
        throw Error(named +
                    " exists and is not a regular file (a device, FIFO or socket); not "
                    "replacing it");
    const fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");
    if (!fs::is_directory(dir, ec))
        throw Error(named + ": directory '" + dir.string() + "' does not exist");
    if (access(dir.c_str(), W_OK) != 0)
        throw Error(named + ": directory '" + dir.string() + "' is not writable");
}

}  // namespace tinygpt::cli
