#include "cli/memory_flag.h"

#include "util/byte_size.h"
#include "util/error.h"

namespace tinygpt::cli {

void add_max_memory_flag(CLI::App* cmd, std::string& value) {
    cmd->add_option("--max-memory", value,
                    "Memory this run may use (e.g. 8G, 512M); default: what the system has "
                    "available. A run whose estimate exceeds it is refused before it starts")
        ->check(CLI::Validator(
            [](std::string& text) -> std::string {
                try {
                    parse_byte_size(text);
                } catch (const Error& e) {
                    return e.what();
                }
                return "";
            },
            "SIZE"));
}

MemoryBudget memory_budget(const std::string& max_memory) {
    MemoryBudget budget;
    if (!max_memory.empty()) {
        budget.bytes = static_cast<double>(parse_byte_size(max_memory));
        budget.source = "--max-memory";
        budget.user_limit = true;
        return budget;
    }
    return available_memory_budget();
}

void check_memory(const MemoryEstimate& estimate, const MemoryBudget& budget,
                  const std::string& advice) {
    require_fits(estimate, budget,
                 advice + (budget.user_limit ? "; or raise --max-memory"
                                             : "; or set --max-memory SIZE to allow more"));
}

std::string memory_summary(const MemoryEstimate& estimate, const MemoryBudget& budget) {
    std::string out =
        "about " + format_bytes(estimate.total_bytes()) + " (" + estimate.breakdown() + ")";
    if (budget.bytes > 0)
        out +=
            " · " + format_bytes(budget.bytes) +
            (budget.user_limit ? " allowed (--max-memory)" : " available (" + budget.source + ")");
    return out;
}

}  // namespace tinygpt::cli
