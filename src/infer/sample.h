// Text generation by recomputation (no KV cache yet): the window of the last ctx tokens is run
// through the model for every new token. Used for the trainer's inline samples.
#pragma once
#include <string>

#include "model/gpt.h"

namespace tinygpt {

// Greedy (argmax) continuation of `prompt` by `new_tokens` bytes.
std::string generate_greedy(GptModel& model, const std::string& prompt, int new_tokens);

// Bytes made printable for a one-line log: newlines become "⏎", other control bytes '·'.
std::string printable(const std::string& text);

}  // namespace tinygpt
