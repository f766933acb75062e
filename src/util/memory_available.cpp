// The one platform-specific file of the memory check. Linux: /proc/meminfo's MemAvailable (free
// memory plus the page cache the kernel can reclaim), and the cgroup limits of this process and
// its ancestors minus what they already use. macOS: free + inactive + purgeable pages, or the
// physical memory when the VM statistics cannot be read. WebAssembly: what the 32-bit heap can
// still grow to (the page's memory, not the machine's, is the wall there).
#include "util/memory_available.h"

#if defined(__EMSCRIPTEN__)
#include <emscripten/heap.h>
#elif defined(__APPLE__)
#include <mach/mach.h>
#include <sys/sysctl.h>
#include <unistd.h>

#include <cstdint>
#else
#include <algorithm>
#include <fstream>
#include <sstream>
#include <vector>
#endif

namespace tinygpt {

#if defined(__EMSCRIPTEN__)

AvailableMemory available_memory() {
    AvailableMemory m;
    // The heap can grow to the module's maximum (4 GB for wasm32); what it holds now counts as
    // taken, though the allocator may still have free blocks inside it: a conservative bound.
    m.bytes = static_cast<double>(emscripten_get_heap_max()) -
              static_cast<double>(emscripten_get_heap_size());
    m.source = "the WebAssembly heap's maximum";
    return m;
}

#elif defined(__APPLE__)

AvailableMemory available_memory() {
    AvailableMemory m;
    uint64_t physical = 0;
    size_t size = sizeof physical;
    if (sysctlbyname("hw.memsize", &physical, &size, nullptr, 0) == 0) {
        m.bytes = static_cast<double>(physical);
        m.source = "hw.memsize";
    }
    vm_statistics64_data_t vm{};
    mach_msg_type_number_t count = HOST_VM_INFO64_COUNT;
    if (host_statistics64(mach_host_self(), HOST_VM_INFO64, reinterpret_cast<host_info64_t>(&vm),
                          &count) == KERN_SUCCESS) {
        const double page = static_cast<double>(sysconf(_SC_PAGESIZE));
        m.bytes =
            page * (static_cast<double>(vm.free_count) + vm.inactive_count + vm.purgeable_count);
        m.source = "free + inactive pages";
    }
    return m;
}

#else

namespace {

// A cgroup file's first number; "max" (v2) and v1's near-2^63 "unlimited" read as absent.
bool read_limit(const std::string& path, double& value) {
    std::ifstream in(path);
    std::string text;
    if (!(in >> text) || text == "max") return false;
    try {
        value = std::stod(text);
    } catch (...) {
        return false;
    }
    return value < 1e18;
}

// The reclaimable page cache a cgroup counts as used: `inactive_file` (v2) or
// `total_inactive_file` (v1) of its memory.stat.
double inactive_file(const std::string& dir, const char* key) {
    std::ifstream in(dir + "/memory.stat");
    std::string name;
    double value = 0;
    while (in >> name >> value)
        if (name == key) return value;
    return 0;
}

// The memory controller's path of this process: v2 ("0::/a/b") or v1 ("4:memory:/a/b").
std::string cgroup_path(bool v2) {
    std::ifstream in("/proc/self/cgroup");
    for (std::string line; std::getline(in, line);) {
        const size_t first = line.find(':'), second = line.find(':', first + 1);
        if (first == std::string::npos || second == std::string::npos) continue;
        const std::string controllers = line.substr(first + 1, second - first - 1);
        const bool memory = v2 ? line.compare(0, first, "0") == 0 && controllers.empty()
                               : ("," + controllers + ",").find(",memory,") != std::string::npos;
        if (memory) return line.substr(second + 1);
    }
    return "";
}

// Room left under the tightest limit of the cgroup at `path` and its ancestors below `mount`.
// Inside a container the cgroup's own directory may be the mount itself, so the mount's root
// is looked at too.
void lower_to_cgroup(AvailableMemory& m, const std::string& mount, const std::string& path,
                     bool v2) {
    const char* limit_file = v2 ? "/memory.max" : "/memory.limit_in_bytes";
    const char* usage_file = v2 ? "/memory.current" : "/memory.usage_in_bytes";
    std::vector<std::string> dirs;
    for (std::string p = path; !p.empty() && p != "/"; p = p.substr(0, p.rfind('/')))
        dirs.push_back(mount + p);
    dirs.push_back(mount);
    for (const std::string& dir : dirs) {
        double limit = 0, usage = 0;
        if (!read_limit(dir + limit_file, limit)) continue;
        read_limit(dir + usage_file, usage);
        usage -= inactive_file(dir, v2 ? "inactive_file" : "total_inactive_file");
        const double room = std::max(0.0, limit - std::max(0.0, usage));
        if (m.source.empty() || room < m.bytes) {
            m.bytes = room;
            m.source = v2 ? "cgroup v2 memory.max" : "cgroup v1 memory.limit_in_bytes";
        }
    }
}

}  // namespace

AvailableMemory available_memory() {
    AvailableMemory m;
    std::ifstream meminfo("/proc/meminfo");
    for (std::string line; std::getline(meminfo, line);) {
        std::istringstream fields(line);
        std::string key;
        double kib = 0;
        if (fields >> key >> kib && key == "MemAvailable:") {
            m.bytes = kib * 1024.0;
            m.source = "MemAvailable";
        }
    }
    const std::string v2 = cgroup_path(true), v1 = cgroup_path(false);
    if (!v2.empty()) {
        lower_to_cgroup(m, "/sys/fs/cgroup", v2, true);
        lower_to_cgroup(m, "/sys/fs/cgroup/unified", v2, true);
    }
    if (!v1.empty()) lower_to_cgroup(m, "/sys/fs/cgroup/memory", v1, false);
    return m;
}

#endif

}  // namespace tinygpt
