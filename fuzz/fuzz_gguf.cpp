// GGUF files (src/io/gguf_reader.cpp, gguf_value.cpp, src/gguf/gguf_import.cpp,
// gguf_vocab_import.cpp): opened as a container (every metadata value read through its typed
// accessors, every tensor converted to f32), its tokenizer read, then opened as a model, as every
// command does, and run.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "fuzz_support.h"
#include "gguf/gguf_vocab.h"
#include "io/gguf_file.h"
#include "util/error.h"

namespace {

void read_value(const tinygpt::io::GgufValue& value) {
    using tinygpt::io::GgufType;
    const std::string what = "fuzz";
    try {
        switch (value.type()) {
            case GgufType::String:
                value.as_string(what);
                break;
            case GgufType::Bool:
                value.as_bool(what);
                break;
            case GgufType::F32:
            case GgufType::F64:
                value.as_float(what);
                break;
            case GgufType::Array:
                if (value.array_type() == GgufType::String)
                    value.as_string_array(what);
                else if (value.array_type() == GgufType::F32 || value.array_type() == GgufType::F64)
                    value.as_float_array(what);
                else
                    value.as_int_array(what);
                break;
            default:
                value.as_int(what);
                value.as_uint(what);
                break;
        }
    } catch (const tinygpt::Error&) {
        // A u64 above INT64_MAX as int, a negative value as unsigned: refused, as they should be.
    }
}

void read_container(const std::string& path) {
    try {
        const tinygpt::io::GgufFile file = tinygpt::io::GgufFile::open(path);
        for (const auto& [key, value] : file.metadata()) read_value(value);
        std::vector<float> values;
        for (const tinygpt::io::GgufTensor& tensor : file.tensors()) {
            values.resize(static_cast<size_t>(tensor.numel()));
            tinygpt::io::gguf_tensor_to_f32(tensor, values.data());
        }
        tinygpt::gguf::tokenizer_from_gguf(file);
    } catch (const tinygpt::Error&) {
        // A clean refusal: what every hostile file must end in.
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace tinygpt::fuzz;
    const std::string path =
        write_temp_file("model.gguf", {reinterpret_cast<const char*>(data), size});
    read_container(path);
    try {
        run_model(tinygpt::open_model(path, {}, tinygpt::NonFinite::Report));
    } catch (const tinygpt::Error&) {
        // A clean refusal: what every hostile file must end in.
    }
    return 0;
}
