// The .tinygpt file: reads the original TinyGPT's v1 and v2 files and our v3 (docs/FORMAT.md),
// writes v2 (so models open in the original) and v3 (the default). Every problem with a file is
// a tinygpt::Error whose message starts with the path.
#pragma once
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "model/config.h"
#include "model/weight_dtype.h"
#include "train/train_state.h"

namespace tinygpt {

// One tensor as stored in the file.
struct StoredTensor {
    std::string name;
    std::vector<int64_t> shape;  // [out, in] for Linear weights, as in the manifest
    WeightDtype dtype = WeightDtype::F32;
    uint64_t offset = 0;  // in bytes from the start of the file
    uint64_t bytes = 0;
};

struct ReadOptions {
    // false (inference): the AdamW sections of a v3 file are checked for size and place but
    // neither checksummed nor touched, so they cost no memory; adam_m()/adam_v() are then null
    // while has_optimizer_state() still reports that the file has them.
    bool optimizer = true;
};

class ModelFile {
  public:
    // Reads and validates a v1, v2 or v3 file. Weights come back as float32 in the memory order
    // of ParameterLayout(config()); for an f32 v3 file they are a read-only memory map.
    // Every pointer returned below stays valid exactly as long as this ModelFile (moving it keeps
    // them valid; a moved-from ModelFile must not be used). Copy what must outlive it.
    static ModelFile read(const std::string& path, const ReadOptions& options = {});

    ModelFile(ModelFile&&) noexcept;
    ModelFile& operator=(ModelFile&&) noexcept;
    ~ModelFile();

    const std::string& path() const;
    int version() const;
    const ModelConfig& config() const;
    const float* weights() const;  // ParameterLayout(config()).total() floats
    // True when weights() (and adam_m/adam_v) point into the read-only memory map of the file
    // (f32 v3 files); false when they were copied/converted into memory owned by this object
    // (v1, v2, bf16/f16 v3). Either way they live exactly as long as this ModelFile.
    bool weights_mapped() const;
    // False when the file has no moments, or (v1/v2) when they are all zero, as the Swift
    // original writes them.
    bool has_optimizer_state() const;
    const float* adam_m() const;  // nullptr without optimizer state
    const float* adam_v() const;
    bool has_training_state() const;  // v3 files saved with include_training_state
    // v1/v2: `step`, `batch` (config.batchSize), `adam_steps` (= step when real m/v are present)
    // and the loss history (imported from lossHistory) only. v3: everything, plus the loss and
    // expert-load histories even when has_training_state() is false.
    const TrainingState& training_state() const;
    const nlohmann::json& header() const;              // the raw JSON header
    const std::vector<StoredTensor>& tensors() const;  // in file order
    WeightDtype weight_dtype() const;
    uint64_t file_bytes() const;
    // The model's tokenizer as HF tokenizer.json / tokenizer_config.json text (v3 files store
    // it); both empty for the byte tokenizer (v1, v2, and byte-level v3 files).
    const std::string& tokenizer_json() const;
    const std::string& tokenizer_config_json() const;

  private:
    struct Impl;
    explicit ModelFile(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

struct SaveOptions {
    int version = 3;                       // 2 or 3
    WeightDtype dtype = WeightDtype::F32;  // v3 only: bf16 / f16 make inference copies
    bool include_optimizer = true;         // needs adam_m / adam_v
    // v3: store `state` (step, schedule, data RNG, …) so `train --resume` can continue exactly.
    // false (e.g. a conversion or an inference copy) leaves it out; loss / expert-load histories
    // are stored either way. v2 stores only the step, the batch and <= 512 loss points.
    bool include_training_state = true;
    // v3: the tokenizer, as HF tokenizer.json and tokenizer_config.json text; empty = bytes (the
    // only tokenizer v2 can hold).
    std::string tokenizer_json, tokenizer_config_json;
};

// Why the original's v2 format cannot hold a model of this config (the Llama family, a per-layer
// MoE layout, expert widths, routing options it does not know), or "" when it can.
std::string v2_cannot_describe(const ModelConfig& cfg);

// Crash-safe save: writes a temporary file in the target's directory, fsyncs it, renames it over
// `path` and fsyncs the directory, so `path` always holds either the old or the new file.
// weights / adam_m / adam_v are in ParameterLayout(cfg) memory order (adam_* may be null when
// options.include_optimizer is false).
void save_model_file(const std::string& path, const ModelConfig& cfg, const float* weights,
                     const float* adam_m, const float* adam_v, const TrainingState& state,
                     const SaveOptions& options = {});

}  // namespace tinygpt
