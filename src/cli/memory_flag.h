// --max-memory and the memory check every command that builds a model runs first: its estimate
// (model/memory_estimate.h) against the memory available, or against the limit the user set.
#pragma once
#include <CLI/CLI.hpp>
#include <string>

#include "model/memory_estimate.h"

namespace tinygpt::cli {

// Adds --max-memory SIZE (8G, 512M, …), validated as it is parsed.
void add_max_memory_flag(CLI::App* cmd, std::string& value);

// The budget: --max-memory when given, else what the system has available.
MemoryBudget memory_budget(const std::string& max_memory);

// Refuses (tinygpt::Error, one line) an estimate over the budget. `advice` names what to make
// smaller; a pointer to --max-memory is added to it.
void check_memory(const MemoryEstimate& estimate, const MemoryBudget& budget,
                  const std::string& advice);

// For banners: "about 1.2 GiB (weights … · …) · 23 GiB available (MemAvailable)".
std::string memory_summary(const MemoryEstimate& estimate, const MemoryBudget& budget);

}  // namespace tinygpt::cli
