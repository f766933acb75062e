// Helpers for the trainer's inline samples.
#pragma once
#include <string>

#include "model/model.h"

namespace tinygpt {

// Greedy continuation of `prompt` by up to `new_tokens` bytes (fewer if the context fills),
// with the KV cache.
std::string generate_greedy(const Model& model, const std::string& prompt, int new_tokens);

// Bytes made printable for a one-line log: newlines become "⏎", other control bytes '.'.
std::string printable(const std::string& text);

}  // namespace tinygpt
