// How much memory this process can still take, before a command allocates a model: what the
// system says is available, lowered by a container's memory limit (cgroup v2 or v1) when that
// leaves less.
#pragma once
#include <string>

namespace tinygpt {

struct AvailableMemory {
    double bytes = 0;    // 0 when nothing could be read (then no check is possible)
    std::string source;  // what bounds it: "MemAvailable", "cgroup v2 memory.max", "hw.memsize", …
};

AvailableMemory available_memory();

}  // namespace tinygpt
