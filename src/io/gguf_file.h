// GGUF files (llama.cpp's model format, versions 2 and 3): reading (memory-mapped, validated on
// open) and crash-safe writing. Layout: magic "GGUF", u32 version, u64 tensor count, u64 metadata
// count, the metadata key/value pairs, the tensor infos (name, dims innermost first, ggml type,
// offset into the data region), padding to `general.alignment` (default 32), the data region.
// This file knows the container only; what the keys and tensors mean is src/gguf/.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace tinygpt::io {

class MappedFile;

// Metadata value types, numbered as in the GGUF specification.
enum class GgufType : uint32_t {
    U8 = 0,
    I8 = 1,
    U16 = 2,
    I16 = 3,
    U32 = 4,
    I32 = 5,
    F32 = 6,
    Bool = 7,
    String = 8,
    Array = 9,
    U64 = 10,
    I64 = 11,
    F64 = 12,
};
const char* gguf_type_name(GgufType type);  // "uint32", "string", "array", ...

// One metadata value: a scalar, a string, or an array of scalars or strings (arrays of arrays
// are refused by the reader: no key we read uses them).
class GgufValue {
  public:
    GgufValue() = default;
    static GgufValue u8(uint8_t v);
    static GgufValue i8(int8_t v);
    static GgufValue u16(uint16_t v);
    static GgufValue i16(int16_t v);
    static GgufValue u32(uint32_t v);
    static GgufValue i32(int32_t v);
    static GgufValue u64(uint64_t v);
    static GgufValue i64(int64_t v);
    static GgufValue f32(float v);
    static GgufValue f64(double v);
    static GgufValue boolean(bool v);
    static GgufValue string(std::string v);
    static GgufValue string_array(std::vector<std::string> v);
    static GgufValue i32_array(std::vector<int32_t> v);
    static GgufValue u32_array(std::vector<uint32_t> v);
    static GgufValue f32_array(std::vector<float> v);
    static GgufValue f64_array(std::vector<double> v);
    // An array of any integer element type, or Bool (0/1); throws tinygpt::Error when an element
    // does not fit `element_type` (u64 elements are limited to INT64_MAX).
    static GgufValue int_array(GgufType element_type, std::vector<int64_t> v);

    GgufType type() const { return type_; }
    GgufType array_type() const { return array_type_; }  // for Array
    size_t array_size() const;                           // 0 unless Array

    // Typed reads; each throws tinygpt::Error "<what>: expected <type>, found <type>" when the
    // value cannot be represented (a negative int as unsigned, a string as a number, ...). Any
    // integer type converts to another when the value fits; F32/F64 (and integers) to double.
    uint64_t as_uint(const std::string& what) const;
    int64_t as_int(const std::string& what) const;
    double as_float(const std::string& what) const;
    bool as_bool(const std::string& what) const;
    const std::string& as_string(const std::string& what) const;
    const std::vector<std::string>& as_string_array(const std::string& what) const;
    // An array of any integer element type as int64 (each element converted).
    std::vector<int64_t> as_int_array(const std::string& what) const;
    // An array of F32/F64 (or integers) as floats.
    std::vector<float> as_float_array(const std::string& what) const;

  private:
    static GgufValue unsigned_scalar(GgufType type, uint64_t v);
    static GgufValue signed_scalar(GgufType type, int64_t v);
    [[noreturn]] void mismatch(const std::string& what, const char* expected) const;

    GgufType type_ = GgufType::U32;
    GgufType array_type_ = GgufType::U32;
    uint64_t u_ = 0;  // unsigned scalars and Bool
    int64_t i_ = 0;   // signed scalars
    double f_ = 0;    // F32 / F64
    std::string s_;
    std::vector<std::string> strings_;
    std::vector<int64_t> ints_;  // integer and bool arrays (u64 values > INT64_MAX refused)
    std::vector<double> floats_;
    friend class GgufFile;
    friend struct GgufWriterAccess;
};

// ggml tensor types, numbered as in ggml.h. tinygpt reads and writes F32, F16, BF16 and Q8_0;
// the reader names any other (Q4_K, ...) in its error.
enum class GgmlType : uint32_t { F32 = 0, F16 = 1, Q8_0 = 8, BF16 = 30 };
// "F32", "Q8_0", and the ggml name of types tinygpt does not load ("Q4_K"); "type 123" for
// numbers ggml does not define.
std::string ggml_type_name(uint32_t type);
// Bytes of a tensor of `numel` elements (numel a multiple of the block size for Q8_0: 32).
uint64_t ggml_tensor_bytes(GgmlType type, int64_t numel);

struct GgufTensor {
    std::string name;
    std::vector<int64_t> ne;  // dimensions, innermost (contiguous) first, as ggml lists them
    GgmlType type = GgmlType::F32;
    uint64_t offset = 0;            // within the data region
    const uint8_t* data = nullptr;  // into the memory map
    uint64_t bytes = 0;
    int64_t numel() const;
};

class GgufFile {
  public:
    // Maps the file and validates the header, every metadata value and every tensor info;
    // throws tinygpt::Error "<path>: ..." naming the key, tensor or byte offset at fault:
    // truncation, a bad magic or version, counts or lengths that cannot fit in the file,
    // unknown value types, nested arrays, duplicate keys or tensor names, dims ≤ 0 or a numel
    // that overflows, a tensor type other than F32/F16/BF16/Q8_0 (named), a Q8_0 row not a
    // multiple of 32, offsets misaligned, overlapping or past the end, an alignment that is not
    // a power of two (or not uint32), a tensor name longer than ggml's 63 bytes, a bool byte
    // other than 0/1, a uint64 array element above INT64_MAX. Allocation is bounded by the
    // file's size. Tensors need not follow ggml's contiguous layout (any aligned, non-overlapping
    // offsets are accepted, and the padding after the last tensor may be missing).
    static GgufFile open(const std::string& path);

    GgufFile(GgufFile&&) noexcept;
    GgufFile& operator=(GgufFile&&) noexcept;
    GgufFile(const GgufFile&) = delete;
    GgufFile& operator=(const GgufFile&) = delete;
    ~GgufFile();

    const std::string& path() const { return path_; }
    uint32_t version() const { return version_; }
    uint32_t alignment() const { return alignment_; }
    // Metadata in file order.
    const std::vector<std::pair<std::string, GgufValue>>& metadata() const { return metadata_; }
    const GgufValue* find(const std::string& key) const;  // nullptr if absent
    // The value of a key that must be present; Error "<path>: metadata key '<key>' is missing".
    const GgufValue& at(const std::string& key) const;
    // Tensors in file (info) order.
    const std::vector<GgufTensor>& tensors() const { return tensors_; }
    const GgufTensor* find_tensor(const std::string& name) const;  // nullptr if absent
    uint64_t file_bytes() const;

  private:
    GgufFile() = default;
    std::string path_;
    uint32_t version_ = 3;
    uint32_t alignment_ = 32;
    std::unique_ptr<MappedFile> mapping_;
    std::vector<std::pair<std::string, GgufValue>> metadata_;
    std::vector<GgufTensor> tensors_;
    std::vector<std::pair<std::string, size_t>> key_index_;     // sorted: key → metadata_ index
    std::vector<std::pair<std::string, size_t>> tensor_index_;  // sorted: name → tensors_ index
};

// Converts a tensor's values to float32 (numel floats into dst): F32 copy, F16/BF16 exact
// widening, Q8_0 as ggml dequantises it (d · q).
void gguf_tensor_to_f32(const GgufTensor& t, float* dst);

struct GgufTensorToWrite {
    std::string name;
    std::vector<int64_t> ne;  // innermost first
    GgmlType type = GgmlType::F32;
    // Produces the tensor's float32 values (numel floats) into dst; called once while writing;
    // the writer converts them to `type` (F16/BF16 round to nearest even; Q8_0 as ggml's
    // reference quantiser, quant::quantize_q8_0).
    std::function<void(float* dst)> fill;
    // Or (when set, instead of fill): produces the tensor's bytes in `type` as they are to be
    // stored (ggml_tensor_bytes(type, numel) bytes), written unchanged.
    std::function<void(uint8_t* dst)> fill_raw = nullptr;
};

// Writes a GGUF v3 file crash-safely (io::atomic_write_file): the metadata in the given order
// (general.alignment is added when `alignment` is not 32 and absent from `metadata`), tensor infos
// in the given order (dims exactly as given; ggml's own writer drops trailing 1s), each tensor's
// data at the next multiple of `alignment`, zero padding after every tensor: byte for byte what
// ggml's gguf_write_to_file writes for the same content. Throws tinygpt::Error "<path>: ..."
// (empty, duplicate or over-63-byte names, bad dims, a Q8_0 row that is not a multiple of 32, a
// non-finite value in a Q8_0 tensor, I/O); on failure the old file at `path` is left as it was.
void write_gguf(const std::string& path,
                const std::vector<std::pair<std::string, GgufValue>>& metadata,
                const std::vector<GgufTensorToWrite>& tensors, uint32_t alignment = 32);

}  // namespace tinygpt::io
