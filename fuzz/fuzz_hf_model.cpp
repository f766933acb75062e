// Hugging Face model directories (src/hf/, src/io/safetensors.*, src/io/hf_checkpoint.*): the
// input is split at kPartSeparator into config.json, model.safetensors and, optionally, an index
// (model.safetensors.index.json) with two shards; they are written into a directory with a fixed
// byte-level tokenizer.json (fuzz_tokenizer covers tokenizers), which is then opened as a model,
// as every command does, and run. The safetensors part is also opened on its own.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_support.h"
#include "io/safetensors.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"

namespace {

void open_safetensors(const std::string& path) {
    try {
        const tinygpt::io::SafetensorsFile file = tinygpt::io::SafetensorsFile::open(path);
        std::vector<float> values;
        for (const tinygpt::io::SafetensorsTensor& tensor : file.tensors()) {
            values.resize(static_cast<size_t>(tensor.numel()));
            tinygpt::io::tensor_to_f32(tensor, values.data());
        }
    } catch (const tinygpt::Error&) {
        // A clean refusal: what every hostile file must end in.
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace tinygpt::fuzz;
    static const std::string tokenizer_json = tinygpt::Tokenizer::bytes().to_hf_json();
    clear_temp_dir();
    const std::vector<std::string_view> parts = split_parts(data, size, 4);
    write_temp_file("config.json", parts[0]);
    write_temp_file("tokenizer.json", tokenizer_json);
    if (parts.size() >= 2) {
        const std::string weights = write_temp_file("model.safetensors", parts[1]);
        open_safetensors(weights);
    }
    if (parts.size() >= 3) {
        write_temp_file("model.safetensors.index.json", parts[2]);
        write_temp_file("model-00001-of-00002.safetensors", parts[1]);
        if (parts.size() >= 4) write_temp_file("model-00002-of-00002.safetensors", parts[3]);
    }
    try {
        run_model(tinygpt::open_model(temp_dir(), {}, tinygpt::NonFinite::Report));
    } catch (const tinygpt::Error&) {
        // A clean refusal: what every hostile file must end in.
    }
    return 0;
}
