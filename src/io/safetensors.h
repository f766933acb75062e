// Hugging Face safetensors files: reading (memory-mapped, validated on open) and crash-safe
// writing. Layout: u64 little-endian header length N, N bytes of UTF-8 JSON describing every
// tensor (dtype, shape, data_offsets relative to the data region), then the data region.
// docs/FORMAT.md ("Hugging Face safetensors") lists what is read and what is refused. A multi-file
// checkpoint (a directory with an index) is io/hf_checkpoint.h.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace tinygpt::io {

class MappedFile;

// The dtypes tinygpt loads. A file may hold others (I8, F64, F8_E4M3, ...): they are validated
// like any tensor but are not loadable (SafetensorsFile::unsupported_dtype names them).
enum class TensorDtype { F32, BF16, F16 };
const char* safetensors_dtype_name(TensorDtype dtype);  // "F32", "BF16", "F16"
size_t dtype_size(TensorDtype dtype);                   // bytes per element

struct SafetensorsTensor {
    std::string name;
    TensorDtype dtype = TensorDtype::F32;
    std::vector<int64_t> shape;
    const uint8_t* data = nullptr;  // into the memory map; NOT necessarily aligned
    uint64_t bytes = 0;
    int64_t numel() const;  // 1 for a scalar (shape [])
};

class SafetensorsFile {
  public:
    // Maps and validates the whole header; throws tinygpt::Error "<path>: ..." on any problem.
    static SafetensorsFile open(const std::string& path);

    SafetensorsFile(SafetensorsFile&&) noexcept;
    SafetensorsFile& operator=(SafetensorsFile&&) noexcept;
    SafetensorsFile(const SafetensorsFile&) = delete;
    SafetensorsFile& operator=(const SafetensorsFile&) = delete;
    ~SafetensorsFile();

    const std::string& path() const { return path_; }
    // The loadable (F32 / BF16 / F16) tensors, in data-offset order.
    const std::vector<SafetensorsTensor>& tensors() const { return tensors_; }
    const SafetensorsTensor* find(const std::string& name) const;  // nullptr if absent
    // Tensors of a valid safetensors dtype tinygpt does not load: name → dtype ("I64").
    const std::map<std::string, std::string>& unsupported() const { return unsupported_; }
    // The dtype string of `name` if it is such a tensor, else nullptr.
    const std::string* unsupported_dtype(const std::string& name) const;
    const std::map<std::string, std::string>& metadata() const { return metadata_; }
    uint64_t file_bytes() const;

  private:
    SafetensorsFile() = default;

    std::string path_;
    std::unique_ptr<MappedFile> mapping_;
    std::vector<SafetensorsTensor> tensors_;
    std::map<std::string, size_t> index_;  // name → position in tensors_
    std::map<std::string, std::string> unsupported_;
    std::map<std::string, std::string> metadata_;
};

// Converts a tensor to float32 (F32 copy; BF16 / F16 exact widening), writing numel floats to
// dst. Reads element by element with memcpy: safetensors data need not be aligned.
void tensor_to_f32(const SafetensorsTensor& t, float* dst);

struct TensorToWrite {
    std::string name;
    std::vector<int64_t> shape;
    // Produces the tensor's float32 values (numel floats) into dst; called once, while writing,
    // so that a big model is written tensor by tensor without a second full copy.
    std::function<void(float* dst)> fill;
};

// Writes one safetensors file crash-safely (io::atomic_write_file): a header with __metadata__,
// the tensors in the given order and contiguous, each converted to `dtype` (BF16 / F16 round to
// nearest even, NaN stays NaN, F16 overflows to ±inf). The header is padded with spaces so that
// the data region starts at a multiple of 8, as Hugging Face's writer does. Throws
// tinygpt::Error "<path>: ..." (bad names or shapes, a failing fill, I/O); on failure the old
// file at `path` is left as it was.
void write_safetensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                       TensorDtype dtype,
                       const std::map<std::string, std::string>& metadata = {{"format", "pt"}});

}  // namespace tinygpt::io
