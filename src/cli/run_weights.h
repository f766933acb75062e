// --dtype of the commands that run a model (sample, eval, bench): the weights as the file stores
// them, or converted when loaded (an f32 model quantised to q8_0 on the fly, a bf16 one widened).
#pragma once
#include <CLI/CLI.hpp>
#include <string>

#include "load/model_source.h"
#include "model/memory_estimate.h"
#include "model/model_weights.h"

namespace tinygpt::cli {

// Adds --dtype f32|bf16|f16|q8_0 (default: as stored), validated as it is parsed.
void add_run_dtype_flag(CLI::App* cmd, std::string& value);

// For the memory estimate, before anything is converted: 0 when the weights will run as one f32
// buffer (the estimate then counts that buffer), else the bytes they will hold: as stored, plus
// the converted copy with --dtype (the file stays mapped meanwhile).
double typed_weight_bytes(const OpenedModel& model, const std::string& dtype);

// The weights to run: model.weights, or (with --dtype) converted into memory of their own.
ModelWeights run_weights(const OpenedModel& model, const std::string& dtype);

}  // namespace tinygpt::cli
