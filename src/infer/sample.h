// Helpers for the trainer's inline samples (generation itself: infer/generate.h).
#pragma once
#include <string>

namespace tinygpt {

// Bytes made printable for a one-line log: newlines become "⏎", other control bytes '.'.
std::string printable(const std::string& text);

}  // namespace tinygpt
