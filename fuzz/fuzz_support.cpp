#include "fuzz_support.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <stdexcept>

#include "infer/session.h"

namespace tinygpt::fuzz {

namespace fs = std::filesystem;

namespace {

// Created on first use, removed (with what the last input left) when the process exits.
class TempDir {
  public:
    TempDir() {
        const fs::path base =
            fs::is_directory("/dev/shm") ? fs::path("/dev/shm") : fs::temp_directory_path();
        std::string pattern = (base / "tinygpt-fuzz-XXXXXX").string();
        if (mkdtemp(pattern.data()) == nullptr)
            throw std::runtime_error("mkdtemp failed in " + base.string());
        path_ = pattern;
    }
    ~TempDir() {
        std::error_code ec;
        fs::remove_all(path_, ec);
    }
    const std::string& path() const { return path_; }

  private:
    std::string path_;
};

}  // namespace

const std::string& temp_dir() {
    static const TempDir dir;
    return dir.path();
}

std::string write_temp_file(const std::string& name, std::string_view bytes) {
    const std::string path = temp_dir() + "/" + name;
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    if (!out.flush()) throw std::runtime_error("cannot write " + path);
    return path;
}

void clear_temp_dir() {
    for (const fs::directory_entry& entry : fs::directory_iterator(temp_dir()))
        fs::remove_all(entry.path());
}

std::vector<std::string_view> split_parts(const uint8_t* data, size_t size, size_t max_parts) {
    std::string_view rest(reinterpret_cast<const char*>(data), size);
    std::vector<std::string_view> parts;
    while (parts.size() + 1 < max_parts) {
        const size_t at = rest.find(kPartSeparator);
        if (at == std::string_view::npos) break;
        parts.push_back(rest.substr(0, at));
        rest.remove_prefix(at + kPartSeparator.size());
    }
    parts.push_back(rest);
    return parts;
}

void run_model(const OpenedModel& model) {
    if (!model.non_finite.empty()) return;
    InferenceSession session(model.config, model.f32_weights());
    std::vector<int> prompt = model.tokenizer.encode("RO");
    if (prompt.empty()) prompt.push_back(0);
    prompt.resize(std::min<size_t>(prompt.size(), static_cast<size_t>(model.config.ctx)));
    const float* logits = session.forward(prompt.data(), static_cast<int>(prompt.size()));
    if (session.length() >= session.capacity()) return;
    // The greedy next token, fed back: the decode path (one token, MoE sparse dispatch).
    const int next =
        static_cast<int>(std::max_element(logits, logits + model.config.vocab) - logits);
    session.forward(&next, 1);
}

}  // namespace tinygpt::fuzz
