// Shared by the libFuzzer targets of fuzz/ (docs/FUZZING.md): the readers take paths, so each
// input is written to a private temporary directory first (on /dev/shm when there is one: no
// disk I/O per execution), and a model that loads is run for a token or two, as `sample` would.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "load/model_source.h"

namespace tinygpt::fuzz {

// This process's temporary directory (created on first use, removed at exit).
const std::string& temp_dir();

// Writes `bytes` to temp_dir()/name (replacing it) and returns the path.
std::string write_temp_file(const std::string& name, std::string_view bytes);

// Removes everything in temp_dir(), so that no file of one input leaks into the next.
void clear_temp_dir();

// Splits an input into at most `max_parts` parts at kPartSeparator, so that one fuzz input can
// hold several files (config.json + model.safetensors, tokenizer.json + text, ...).
inline constexpr std::string_view kPartSeparator = "\n#--tinygpt-fuzz-part--#\n";
std::vector<std::string_view> split_parts(const uint8_t* data, size_t size, size_t max_parts);

// What a command does after loading: a short prompt through the model, prefill and one decode
// step. Skipped for models with NaN/inf weights (commands refuse those; open_model reports them).
void run_model(const OpenedModel& model);

}  // namespace tinygpt::fuzz
