// Reading a GGUF file into our layout: the architecture's keys into a ModelConfig, every tensor
// checked against the table before anything is allocated, then converted one by one.
#include <algorithm>
#include <cstring>
#include <set>
#include <unordered_set>

#include "gguf/gguf_model.h"
#include "gguf/gguf_vocab.h"
#include "io/gguf_file.h"
#include "io/mapped_file.h"
#include "model/params.h"
#include "util/error.h"
#include "util/format.h"

namespace tinygpt::gguf {

namespace {}  // namespace

GgufModel load_gguf_model(const std::string& path) {
    const io::GgufFile file = io::GgufFile::open(path);
    GgufModel m;
    m.version = file.version();
    m.file_bytes = file.file_bytes();
    m.arch = [&] {
        try {
            return parse_gguf_arch(file.at("general.architecture")
                                       .as_string(path + ": metadata key 'general.architecture'"));
        } catch (const Error& e) {
            const std::string what = e.what();
            if (what.rfind(path, 0) == 0) throw;
            throw Error(path + ": " + what);
        }
    }();
    m.config = config_from_gguf(file, m.arch);
    const ModelConfig& cfg = m.config;

    // Every tensor the architecture has, with its shape; nothing else.
    const std::vector<GgufTensorSpec> specs = gguf_tensor_specs(m.arch, cfg);
    std::unordered_set<std::string> expected;
    for (const GgufTensorSpec& spec : specs) {
        expected.insert(spec.name);
        const io::GgufTensor* t = file.find_tensor(spec.name);
        if (!t)
            throw Error(path + ": tensor '" + spec.name + "' is missing (a " +
                        gguf_arch_name(m.arch) + " model of this configuration has it)");
        if (t->ne != spec.ne)
            throw Error(path + ": tensor '" + spec.name + "' has shape " + shape_string(t->ne) +
                        ", expected " + shape_string(spec.ne) + " from the metadata");
    }
    for (const io::GgufTensor& t : file.tensors())
        if (!expected.count(t.name))
            throw Error(path + ": tensor '" + t.name + "' is not part of a " +
                        gguf_arch_name(m.arch) +
                        " model as tinygpt computes it (this configuration has no such tensor)");

    m.tokenizer = tokenizer_from_gguf(file);

    const ParameterLayout layout(cfg);
    m.weights.assign(layout.total(), 0.0f);
    std::set<std::string> types;
    std::vector<float> values, unpermuted;
    for (const GgufTensorSpec& spec : specs) {
        const io::GgufTensor& t = *file.find_tensor(spec.name);
        types.insert(io::ggml_type_name(static_cast<uint32_t>(t.type)));
        values.resize(static_cast<size_t>(t.numel()));
        io::gguf_tensor_to_f32(t, values.data());
        io::release_mapped_pages(t.data, t.bytes);
        const float* src = values.data();
        if (spec.permute_heads > 0) {
            const int64_t rows = spec.ne.size() >= 2 ? spec.ne[1] : spec.ne[0];
            const int64_t cols = spec.ne.size() >= 2 ? spec.ne[0] : 1;
            unpermuted.resize(values.size());
            unpermute_rows_from_llama(values.data(), unpermuted.data(), spec.permute_heads,
                                      static_cast<int>(rows / spec.permute_heads), cols);
            src = unpermuted.data();
        }
        const size_t block = values.size() / spec.parts.size();
        for (size_t k = 0; k < spec.parts.size(); ++k) {
            const ParamInfo& p = layout.at(spec.parts[k]);
            if (p.numel != block)
                throw Error(path + ": tensor '" + spec.name + "' does not split into " +
                            describe_tensor(spec.parts[k]));
            std::memcpy(m.weights.data() + p.offset, src + k * block, block * sizeof(float));
        }
    }
    for (const std::string& t : types) m.types += (m.types.empty() ? "" : "+") + t;
    m.tensors = static_cast<int>(specs.size());
    return m;
}

}  // namespace tinygpt::gguf
