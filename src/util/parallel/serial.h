// util/parallel.h's backend for a build without threads (the browser's build for pages that
// are not cross-origin isolated, where WebAssembly threads are unavailable): every region runs
// on the calling thread.
#pragma once

namespace tinygpt {

inline int parallel_threads() {
    return 1;
}
inline void set_parallel_threads(int) {}
inline bool in_parallel() {
    return false;
}
inline int processor_count() {
    return 1;
}

template <typename Body>
void parallel_region(int, Body&& body) {
    body(0, 1);
}

}  // namespace tinygpt
