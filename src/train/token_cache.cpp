#include "train/token_cache.h"

#include <xxhash.h>

#include <cstdio>
#include <cstring>
#include <filesystem>

#include "io/atomic_write.h"
#include "io/format_internal.h"
#include "io/mapped_file.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"
#include "util/sysinfo.h"
#include "util/timer.h"

namespace tinygpt {

namespace {

constexpr char kMagic[4] = {'T', 'G', 'T', 'K'};
constexpr uint32_t kVersion = 1;

struct CacheHeader {
    char magic[4];
    uint32_t version;
    uint64_t text_bytes, text_hash, tokenizer, count, tokens_hash;
};
static_assert(sizeof(CacheHeader) == 48);

// The tokens of a valid cache for exactly this text and tokenizer, or empty.
std::vector<int32_t> read_cache(const std::string& path, const CacheHeader& want) {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(path, ec)) return {};
    try {
        const io::MappedFile file(path);
        CacheHeader h;
        if (file.size() < sizeof h) return {};
        std::memcpy(&h, file.data(), sizeof h);
        if (std::memcmp(h.magic, kMagic, 4) != 0 || h.version != kVersion ||
            h.text_bytes != want.text_bytes || h.text_hash != want.text_hash ||
            h.tokenizer != want.tokenizer || h.count > (file.size() - sizeof h) / 4 ||
            file.size() != sizeof h + h.count * 4)
            return {};
        const uint8_t* data = file.data() + sizeof h;
        if (XXH3_64bits(data, h.count * 4) != h.tokens_hash) return {};
        std::vector<int32_t> tokens(h.count);
        std::memcpy(tokens.data(), data, h.count * 4);
        return tokens;
    } catch (const Error&) {
        return {};
    }
}

}  // namespace

std::string token_cache_path(const std::string& corpus_path, const Tokenizer& tokenizer) {
    const std::filesystem::path p(corpus_path);
    char fp[17];
    std::snprintf(fp, sizeof fp, "%016llx",
                  static_cast<unsigned long long>(tokenizer.fingerprint()));
    std::string name = ".";
    name += p.filename().string();
    name += '.';
    name += fp;
    name += ".tokens";
    return (p.parent_path() / name).string();
}

std::vector<int32_t> cached_corpus_tokens(const std::string& corpus_path, const std::string& text,
                                          const Tokenizer& tokenizer, bool progress) {
    CacheHeader h{};
    std::memcpy(h.magic, kMagic, 4);
    h.version = kVersion;
    h.text_bytes = text.size();
    h.text_hash = XXH3_64bits(text.data(), text.size());
    h.tokenizer = tokenizer.fingerprint();
    const std::string cache = token_cache_path(corpus_path, tokenizer);
    std::vector<int32_t> tokens = read_cache(cache, h);
    if (!tokens.empty()) {
        if (progress)
            std::fprintf(stderr, "corpus: %zu tokens from the cache %s\n", tokens.size(),
                         cache.c_str());
        return tokens;
    }
    Timer timer;
    const auto report = [&](size_t done, size_t total) {
        if (progress)
            std::fprintf(stderr, "\rcorpus: encoding %s · %5.1f%%", corpus_path.c_str(),
                         total ? 100.0 * static_cast<double>(done) / total : 100.0);
    };
    const std::vector<int> ids = tokenizer.encode_parallel(text, num_threads(), report);
    tokens.assign(ids.begin(), ids.end());
    if (progress)
        std::fprintf(stderr, "\rcorpus: encoded %s · %zu bytes → %zu tokens in %.1f s\n",
                     corpus_path.c_str(), text.size(), tokens.size(), timer.seconds());
    h.count = tokens.size();
    h.tokens_hash = XXH3_64bits(tokens.data(), tokens.size() * 4);
    try {
        io::atomic_write_file(cache, [&](io::FileSink& sink) {
            sink.write(&h, sizeof h);
            sink.write(tokens.data(), tokens.size() * 4);
        });
    } catch (const Error& e) {
        if (progress) std::fprintf(stderr, "corpus: not cached (%s)\n", e.what());
    }
    return tokens;
}

}  // namespace tinygpt
