// The .tinygpt file: reads the original TinyGPT's v1 and v2 files and our v3 (docs/FORMAT.md),
// writes v2 (so models open in the original) and v3 (the default; f32 for training, or an
// inference copy with each tensor in bf16, f16 or q8_0). Every problem with a file is a
// tinygpt::Error whose message starts with the path.
#pragma once
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "model/config.h"
#include "model/model_weights.h"
#include "model/weight_dtype.h"
#include "train/train_state.h"

namespace tinygpt {

// One tensor as stored in the file.
struct StoredTensor {
    std::string name;
    std::vector<int64_t> shape;            // [out, in] for Linear weights, as in the manifest
    WeightDtype dtype = WeightDtype::F32;  // v3: per tensor (a q8_0 copy keeps norms in f32)
    uint64_t offset = 0;                   // in bytes from the start of the file
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
    // Reads and validates a v1, v2 or v3 file (every checksum of what is read). A v3 file's
    // weights stay in the read-only memory map in the types they are stored in (stored_weights);
    // v1/v2 files are converted into owned f32. Every pointer returned below stays valid exactly
    // as long as this ModelFile (moving it keeps them valid; a moved-from ModelFile must not be
    // used); copies of stored_weights() keep their memory (the mapping) alive themselves.
    static ModelFile read(const std::string& path, const ReadOptions& options = {});

    ModelFile(ModelFile&&) noexcept;
    ModelFile& operator=(ModelFile&&) noexcept;
    ~ModelFile();

    const std::string& path() const;
    int version() const;
    const ModelConfig& config() const;
    // The weights as stored, one view per tensor of ParameterLayout(config()): v3 files, views
    // into the memory map (no copy); v1/v2 files, the converted f32. Tensors that inference
    // always reads as f32 (norms, biases, the router, the position table) are f32 here even in a
    // v3 file written before per-tensor types, which stored them in bf16/f16 (those few are
    // widened into memory of their own); tensors() says how the file stores them.
    const ModelWeights& stored_weights() const;
    // The weights as f32, ParameterLayout(config()).total() floats: the mapping itself for f32
    // files, the converted buffer of v1/v2 files; typed weights are converted on the first call
    // (owned by this object, thread-safe) and cost nothing until then.
    const float* weights() const;
    // True once weights() has converted typed weights to f32 (never for f32 and v1/v2 files).
    bool has_f32_copy() const;
    // True when stored_weights() (and adam_m/adam_v) point into the read-only memory map of the
    // file (v3 files); false when they were converted into memory owned by this object (v1, v2).
    // Either way they live exactly as long as this ModelFile.
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
    // The type of most of the weights' bytes as stored (what a "q8_0 model" means; v2 inference
    // files: f16).
    WeightDtype weight_dtype() const;
    // The stored tensor types, the most bytes first: "q8_0+f32", "bf16", "f32".
    std::string stored_types() const;
    uint64_t stored_weight_bytes() const;  // Σ tensors().bytes
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
    int version = 3;  // 2 or 3
    // v3 only: bf16 / f16 / q8_0 make inference copies, each tensor in the type
    // stored_tensor_dtype gives it (norms, biases, the router and the position table stay f32;
    // q8_0 matrices whose rows are not a multiple of 32 are f16).
    WeightDtype dtype = WeightDtype::F32;
    bool include_optimizer = true;  // needs adam_m / adam_v; f32 weights only
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

// Saves weights in any types (an inference copy: options.include_optimizer must be false). v3:
// tensors already in the type options.dtype gives them are written bit for bit (a q8_0 model
// saved as q8_0 is the same bytes), the others converted (ModelWeights::converted); v2 (f32
// only): converted to f32.
void save_model_file(const std::string& path, const ModelWeights& weights,
                     const TrainingState& state, const SaveOptions& options);

}  // namespace tinygpt
