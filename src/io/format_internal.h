// Internals shared by the .tinygpt readers and writers (src/io/*.cpp); not part of the public API.
//
// Error convention: code below throws tinygpt::Error (or lets nlohmann / the standard library
// throw) WITHOUT the file's path; ModelFile::read and save_model_file catch everything and
// prefix "<path>: ", so every message a user sees starts with the path exactly once.
#pragma once
#include <bit>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "io/mapped_file.h"
#include "io/model_file.h"
#include "model/config.h"
#include "model/model_weights.h"
#include "model/params.h"
#include "train/train_state.h"
#include "util/error.h"
#include "util/format.h"
#include "util/half.h"

static_assert(std::endian::native == std::endian::little,
              "the .tinygpt formats are little-endian and mapped in place");

namespace tinygpt::io {

using nlohmann::json;

inline constexpr char kMagic[4] = {'T', 'G', 'P', 'T'};
inline constexpr uint32_t kNewestVersion = 3;
inline constexpr uint64_t kPreambleBytes = 12;            // magic, version, header length
inline constexpr uint64_t kMaxHeaderBytes = 64ull << 20;  // 64 MiB of JSON at most
inline constexpr uint64_t kSectionAlign = 64;             // v3 section alignment in bytes
// Bounds the readers put on a file's numbers before trusting them.
inline constexpr int64_t kMaxDim = int64_t{1} << 24;     // any width, vocabulary or context
inline constexpr int64_t kMaxLayers = int64_t{1} << 16;  // transformer blocks
inline constexpr int64_t kI64Max = std::numeric_limits<int64_t>::max();

// What a reader produces; ModelFile::Impl owns one.
struct LoadedModel {
    int version = 0;
    ModelConfig config;
    WeightDtype dtype = WeightDtype::F32;  // the type of most of the weights' bytes
    // v3: the mapping stays alive and `stored` (and adam_m/adam_v) point into it; `stored` shares
    // its ownership. v1/v2: the tensors were converted into the owned vectors (`weights` points
    // into owned_weights, `stored` is left empty for ModelFile to wrap) and the mapping is
    // released.
    std::shared_ptr<MappedFile> mapping;
    ModelWeights stored;
    std::vector<float> owned_weights, owned_m, owned_v;
    const float* weights = nullptr;  // v1/v2 only
    const float* adam_m = nullptr;
    const float* adam_v = nullptr;
    bool has_optimizer = false;
    bool has_training = false;
    TrainingState state;
    json header;
    std::vector<StoredTensor> tensors;
    // The tokenizer as HF tokenizer.json / tokenizer_config.json text; both empty for bytes.
    std::string tokenizer_json, tokenizer_config_json;
};

class FileSink;

// --- readers / writers (one per format family) -------------------------------------------------
LoadedModel read_v3(std::unique_ptr<MappedFile> file, uint64_t header_len, bool want_optimizer);
// The header's "config" object (src/io/v3_config.cpp). config_from_json range-checks every field
// and refuses unknown keys; validation of the whole config is the caller's.
json config_to_json(const ModelConfig& cfg);
ModelConfig config_from_json(const json& j);
LoadedModel read_original(std::unique_ptr<MappedFile> file, uint32_t version, uint64_t header_len);

// The header's training objects (src/io/v3_state.cpp).
json training_to_json(const TrainingState& s);
void training_from_json(const json& j, TrainingState& s);
json loss_history_to_json(const std::vector<LossRecord>& records);
std::vector<LossRecord> loss_history_from_json(const json& j);
json expert_load_to_json(const std::vector<ExpertLoadRecord>& records);
std::vector<ExpertLoadRecord> expert_load_from_json(const json& j);

// --- the v3 weights section and its tensor table (src/io/v3_tensors.cpp) -------------------------
// A tensor's place in the weights section; offset in bytes from the section's start.
struct TensorPlace {
    WeightDtype dtype = WeightDtype::F32;
    uint64_t offset = 0, bytes = 0;
};
// "f32" / "bf16" / "f16" / "q8_0" exactly as files spell them; nullopt otherwise.
std::optional<WeightDtype> parse_file_dtype(const std::string& s);
// Checks the header's "tensors" table against the layout and returns each entry's place. A
// single-type section (`section_dtype` set: f32, or bf16/f16 as written before per-tensor types)
// holds every tensor in that type at its ParameterLayout offset × the type's size; a "mixed" one
// (nullopt) holds each tensor in its own type: rows of q8_0 tensors a multiple of 32 long, bytes
// as the type and shape say, groups on 64-byte boundaries, joined tensors (k/v after q, up after
// gate) right after their predecessor in its type, no overlaps, in table order, ending exactly at
// `section_bytes`. Throws Error naming the tensor.
std::vector<TensorPlace> read_tensor_table(const json& j, const ParameterLayout& layout,
                                           std::optional<WeightDtype> section_dtype,
                                           uint64_t section_bytes);
// How the writer stores `weights` (in their current types): packed as pack_tensors() says; an
// all-f32 model is the single-type "f32" section (the training buffer), anything else "mixed".
struct WeightsSection {
    bool mixed = false;
    std::vector<TensorPlace> places;
    uint64_t bytes = 0;
    uint64_t checksum = 0;  // XXH3-64 of the section's bytes (padding zeros included)
};
WeightsSection plan_weights_section(const ModelWeights& weights);
json tensor_table_json(const ParameterLayout& layout, const std::vector<TensorPlace>& places);
// The section's bytes (tensors and zero padding); the sink must be at the section's start.
void write_weights_section(FileSink& out, const ModelWeights& weights, const WeightsSection& s);

// `weights` in the types they are to be stored in (the caller converts); adam_* are f32 in
// ParameterLayout order, used when options.include_optimizer.
void write_v3(FileSink& out, const ModelWeights& weights, const float* adam_m, const float* adam_v,
              const TrainingState& state, const SaveOptions& options);
void write_v2(FileSink& out, const ModelConfig& cfg, const float* weights, const float* adam_m,
              const float* adam_v, const TrainingState& state, const SaveOptions& options);

// --- small helpers ------------------------------------------------------------------------------
inline uint32_t load_u32(const uint8_t* p) {
    uint32_t v;
    std::memcpy(&v, p, 4);
    return v;
}
inline uint64_t load_u64(const uint8_t* p) {
    uint64_t v;
    std::memcpy(&v, p, 8);
    return v;
}
inline uint64_t align_up(uint64_t x, uint64_t a) {
    return (x + a - 1) / a * a;
}

size_t dtype_bytes(WeightDtype dtype);
uint64_t checksum64(const void* data, size_t bytes);  // XXH3_64bits
std::string hex64(uint64_t v);                        // 16 lowercase hex digits
std::string iso8601_now();                            // "2026-05-31T12:34:56Z"

// Model-size plausibility before anything is allocated: throws when the parameter count the
// config implies (×bytes_per_param) cannot fit in `available` bytes, and caps every dimension
// so that building a ParameterLayout is always cheap once this passed.
void check_config_fits(const ModelConfig& cfg, uint64_t bytes_per_param, uint64_t available,
                       const std::string& what);

// The JSON header: nesting capped, parse errors as "header is not valid JSON: ...".
json parse_header(const uint8_t* text, size_t bytes);
// A value for an error message: scalars (shortened), containers summarised (never recursed).
std::string excerpt(const json& v);

// Typed JSON access with messages that name the field ("header field 'config.layers' ...").
const json& require_field(const json& obj, const char* key, const std::string& where);
const json* optional_field(const json& obj, const char* key);
int64_t as_int(const json& v, const std::string& where, int64_t lo, int64_t hi);
uint64_t as_u64(const json& v, const std::string& where);
double as_number(const json& v, const std::string& where);
bool as_bool(const json& v, const std::string& where);
const std::string& as_string(const json& v, const std::string& where);
const json& as_object(const json& v, const std::string& where);
const json& as_array(const json& v, const std::string& where);
// Floats that may be NaN / ±inf: numbers, null (NaN), "inf" / "-inf" / "nan".
json float_to_json(float x);
float json_to_float(const json& v, const std::string& where);
json double_to_json(double x);
double json_to_double(const json& v, const std::string& where);

// dst[c·rows + r] = src[r·cols + c]: a [rows, cols] row-major matrix into [cols, rows], in
// cache-sized tiles (the v1/v2 formats store every Linear weight transposed).
inline void transpose(const float* src, float* dst, size_t rows, size_t cols) {
    constexpr size_t kTile = 32;
    for (size_t r0 = 0; r0 < rows; r0 += kTile)
        for (size_t c0 = 0; c0 < cols; c0 += kTile) {
            const size_t r1 = r0 + kTile < rows ? r0 + kTile : rows;
            const size_t c1 = c0 + kTile < cols ? c0 + kTile : cols;
            for (size_t r = r0; r < r1; ++r)
                for (size_t c = c0; c < c1; ++c) dst[c * rows + r] = src[r * cols + c];
        }
}

// --- output -------------------------------------------------------------------------------------
// Buffered sequential writer over a file descriptor (the atomic temp file). Errors throw without
// the path (save_model_file adds it).
class FileSink {
  public:
    explicit FileSink(int fd);
    ~FileSink();
    FileSink(const FileSink&) = delete;
    FileSink& operator=(const FileSink&) = delete;
    void write(const void* data, size_t bytes);
    void zeros(size_t bytes);
    void pad_to(uint64_t offset);  // zeros up to an absolute offset (≥ the current one)
    uint64_t offset() const { return offset_; }
    void flush();

  private:
    int fd_;
    uint64_t offset_ = 0;
    std::vector<uint8_t> buffer_;
    size_t used_ = 0;
};

}  // namespace tinygpt::io
