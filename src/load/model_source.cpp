#include "load/model_source.h"

#include <cstdio>

#include "gguf/gguf_model.h"
#include "gguf/gguf_vocab.h"
#include "hf/hf_model.h"
#include "io/gguf_file.h"
#include "io/mapped_file.h"
#include "util/error.h"
#include "util/timer.h"

namespace tinygpt {

namespace {

void check_tokenizer_fits(const OpenedModel& m) {
    if (m.tokenizer.vocab_size() > m.config.vocab)
        throw Error(m.path + ": the tokenizer has " + std::to_string(m.tokenizer.vocab_size()) +
                    " ids but the model's vocabulary only " + std::to_string(m.config.vocab));
}

}  // namespace

OpenedModel open_model(const std::string& path, const ReadOptions& options, NonFinite non_finite) {
    Timer timer;
    OpenedModel m;
    m.path = path;
    if (hf::is_hf_model_dir(path)) {
        hf::HfModel hf = hf::load_hf_model(path);
        m.is_hf = true;
        m.config = hf.config;
        auto owned = std::make_shared<std::vector<float>>(std::move(hf.weights));
        m.weights = ModelWeights::from_f32(m.config, owned->data(), owned);
        m.tokenizer = Tokenizer::from_hf_json(hf.tokenizer_json, hf.tokenizer_config_json,
                                              path + "/tokenizer.json");
        char buf[160];
        std::snprintf(buf, sizeof buf, "Hugging Face %s (%s, %d file%s)",
                      hf::model_type_name(hf.type), hf.dtypes.c_str(), hf.files,
                      hf.files == 1 ? "" : "s");
        m.format = buf;
    } else if (gguf::is_gguf_file(path)) {
        gguf::GgufModel g = gguf::load_gguf_model(path);
        m.config = g.config;
        m.weights = std::move(g.weights);
        m.tokenizer = g.tokenizer;
        m.format = "GGUF v" + std::to_string(g.version) + " " + gguf::gguf_arch_name(g.arch) +
                   " (" + g.types + ", " + std::to_string(g.tensors) + " tensors)";
    } else {
        m.file = std::make_unique<ModelFile>(ModelFile::read(path, options));
        m.config = m.file->config();
        m.weights = m.file->stored_weights();
        if (!m.file->tokenizer_json().empty())
            m.tokenizer =
                Tokenizer::from_hf_json(m.file->tokenizer_json(), m.file->tokenizer_config_json(),
                                        path + " (stored tokenizer)");
        m.format =
            "tinygpt v" + std::to_string(m.file->version()) + " (" + m.file->stored_types() + ")";
    }
    check_tokenizer_fits(m);
    m.non_finite = find_non_finite(m.weights);  // in the stored types: no f32 copy
    if (!m.non_finite.empty() && non_finite == NonFinite::Refuse)
        throw Error(
            path + ": " + describe_non_finite(m.non_finite) +
            "; a model with NaN/inf weights computes nothing (`tinygpt inspect` lists them)");
    m.load_ms = timer.millis();
    return m;
}

const float* OpenedModel::f32_weights() const {
    if (const float* base = weights.f32_base()) return base;
    if (file) return file->weights();  // the file converts once and owns the copy
    F32Copy& copy = *f32_copy_;
    std::call_once(copy.once, [&] { copy.values = weights.to_f32(); });
    return copy.values.data();
}

Tokenizer load_tokenizer(const std::string& spec) {
    if (spec == "bytes") return Tokenizer::bytes();
    if (io::file_starts_with(spec, "TGPT")) {
        const ModelFile file = ModelFile::read(spec, ReadOptions{/*optimizer=*/false});
        if (file.tokenizer_json().empty()) return Tokenizer::bytes();
        return Tokenizer::from_hf_json(file.tokenizer_json(), file.tokenizer_config_json(),
                                       spec + " (stored tokenizer)");
    }
    if (gguf::is_gguf_file(spec)) return gguf::tokenizer_from_gguf(io::GgufFile::open(spec));
    return Tokenizer::load(spec);
}

void set_tokenizer(SaveOptions& options, const Tokenizer& tokenizer) {
    options.tokenizer_json = tokenizer.is_bytes() ? "" : tokenizer.to_hf_json();
    options.tokenizer_config_json = tokenizer.is_bytes() ? "" : tokenizer.to_hf_config_json();
}

}  // namespace tinygpt
