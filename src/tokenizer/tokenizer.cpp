// Encoding, decoding and the accessors of Tokenizer (loading and saving live in their own files).
#include "tokenizer/tokenizer.h"

#include <xxhash.h>

#include <sstream>

#include "tokenizer/byte_level.h"
#include "tokenizer/tokenizer_impl.h"
#include "tokenizer/utf8.h"
#include "util/error.h"

namespace tinygpt {

namespace {

// A cache beyond this many words is dropped and restarted: bounds memory on huge varied texts.
constexpr size_t kMaxCachedWords = 1 << 20;
// Longer pre-tokens are rare and rarely repeat; they skip the cache.
constexpr size_t kMaxCachedWordBytes = 64;

class BpeSink : public EncodeSink {
  public:
    BpeSink(const TokenizerImpl& impl, std::vector<int>& out, TokenizerImpl::WordCache& cache)
        : impl_(impl), out_(out), cache_(cache) {}
    void piece(std::string_view word) override { impl_.encode_piece(word, out_, cache_); }
    void token(int id) override { out_.push_back(id); }

  private:
    const TokenizerImpl& impl_;
    std::vector<int>& out_;
    TokenizerImpl::WordCache& cache_;
};

}  // namespace

Tokenizer make_tokenizer(std::shared_ptr<const TokenizerImpl> impl) {
    return Tokenizer(std::move(impl));
}

void require_valid_utf8(std::string_view text) {
    const size_t bad = utf8::first_invalid(text);
    if (bad != std::string_view::npos) {
        std::ostringstream s;
        s << "text is not valid UTF-8 at byte offset " << bad << " (byte 0x" << std::hex
          << static_cast<int>(static_cast<unsigned char>(text[bad]))
          << "); a BPE tokenizer encodes Unicode text only (the bytes tokenizer takes any bytes)";
        throw Error(s.str());
    }
}

void TokenizerImpl::encode_piece(std::string_view word, std::vector<int>& out,
                                 WordCache& cache) const {
    if (word.size() == 1) {
        out.push_back(bpe.byte_id[static_cast<unsigned char>(word[0])]);
        return;
    }
    if (word.size() > kMaxCachedWordBytes) {
        bpe.encode_word(word, out);
        return;
    }
    const auto it = cache.find(word);
    if (it != cache.end()) {
        out.insert(out.end(), it->second.begin(), it->second.end());
        return;
    }
    const size_t start = out.size();
    bpe.encode_word(word, out);
    if (cache.size() >= kMaxCachedWords) cache.clear();
    cache.emplace(std::string(word), std::vector<int>(out.begin() + start, out.end()));
}

// One stretch of text without raw added tokens: normalise, split out normalized added tokens,
// pre-tokenize.
void TokenizerImpl::pre_tokenize_stretch(std::string_view text, EncodeSink& sink,
                                         std::deque<std::string>* keep) const {
    std::string local;
    if (nfc) {
        std::string& normalized = keep ? keep->emplace_back() : local;
        normalized = utf8::nfc(text);
        text = normalized;
    }
    if (normalized_matcher.empty()) {
        pre_tokenizer.run(text, sink);
        return;
    }
    normalized_matcher.split(
        text, [&](std::string_view part) { pre_tokenizer.run(part, sink); },
        [&](int id) { sink.token(id); });
}

void TokenizerImpl::pre_tokenize(std::string_view text, EncodeSink& sink,
                                 std::deque<std::string>* keep) const {
    if (raw_matcher.empty()) {
        pre_tokenize_stretch(text, sink, keep);
        return;
    }
    raw_matcher.split(
        text, [&](std::string_view part) { pre_tokenize_stretch(part, sink, keep); },
        [&](int id) { sink.token(id); });
}

const std::string& TokenizerImpl::canonical_json() const {
    std::call_once(canonical_once, [&] { canonical = write_hf_json(*this); });
    return canonical;
}

Tokenizer Tokenizer::bytes() {
    auto impl = std::make_shared<TokenizerImpl>();
    impl->bytes_kind = true;
    impl->token_bytes.resize(256);
    impl->vocab_spelling.resize(256);
    impl->present.assign(256, 1);
    impl->added.assign(256, 0);
    impl->in_vocab.assign(256, 1);
    for (int b = 0; b < 256; ++b) {
        impl->token_bytes[b] = std::string(1, static_cast<char>(b));
        impl->vocab_spelling[b] = byte_level::encode(impl->token_bytes[b]);
        impl->id_of_spelling.insert(impl->vocab_spelling[b], b);
    }
    return Tokenizer(std::move(impl));
}

bool Tokenizer::is_bytes() const {
    return impl_->bytes_kind;
}

int Tokenizer::vocab_size() const {
    return static_cast<int>(impl_->token_bytes.size());
}

std::vector<int> Tokenizer::encode(std::string_view text) const {
    std::vector<int> out;
    if (impl_->bytes_kind) {
        out.assign(reinterpret_cast<const unsigned char*>(text.data()),
                   reinterpret_cast<const unsigned char*>(text.data()) + text.size());
        return out;
    }
    require_valid_utf8(text);
    out.reserve(text.size() / 3 + 8);
    TokenizerImpl::WordCache cache;
    BpeSink sink(*impl_, out, cache);
    impl_->pre_tokenize(text, sink);
    return out;
}

std::string Tokenizer::decode(const int* ids, size_t n) const {
    std::string out;
    out.reserve(n * 4);
    const int size = vocab_size();
    for (size_t i = 0; i < n; ++i) {
        const int id = ids[i];
        if (id < 0 || id >= size || !impl_->present[id])
            throw Error("decode: id " + std::to_string(id) + " at position " + std::to_string(i) +
                        " is not a token of this tokenizer (vocab size " + std::to_string(size) +
                        ")");
        out += impl_->token_bytes[id];
    }
    return out;
}

std::string Tokenizer::decode(const std::vector<int>& ids) const {
    return decode(ids.data(), ids.size());
}

const std::string& Tokenizer::token_bytes(int id) const {
    if (id < 0 || id >= vocab_size() || !impl_->present[id])
        throw Error("token_bytes: id " + std::to_string(id) + " is not a token of this tokenizer");
    return impl_->token_bytes[id];
}

std::optional<int> Tokenizer::bos_id() const {
    return impl_->bos;
}
std::optional<int> Tokenizer::eos_id() const {
    return impl_->eos;
}
bool Tokenizer::add_bos() const {
    return impl_->add_bos;
}

std::optional<int> Tokenizer::token_id(const std::string& content) const {
    if (const int id = impl_->id_of_spelling.find(content); id >= 0) return id;
    if (const auto it = impl_->id_of_added.find(content); it != impl_->id_of_added.end())
        return it->second;
    return std::nullopt;
}

std::string Tokenizer::to_hf_json() const {
    return impl_->canonical_json();
}

std::string Tokenizer::to_hf_config_json() const {
    return write_hf_config_json(*impl_);
}

uint64_t Tokenizer::fingerprint() const {
    const std::string& text = impl_->canonical_json();
    return XXH3_64bits(text.data(), text.size());
}

std::string Tokenizer::describe() const {
    const TokenizerImpl& t = *impl_;
    std::ostringstream s;
    if (t.bytes_kind) {
        s << "bytes: vocab 256 (id = byte value), no merges, no special tokens";
        return s.str();
    }
    s << "byte-level BPE: vocab " << vocab_size() << ", merges " << t.merge_pairs.size();
    s << ", normalizer " << (t.nfc ? "NFC" : "none");
    s << ", pre-tokenizer "
      << (t.pre_tokenizer_json.is_null() ? "none" : t.pre_tokenizer_json.dump());
    if (t.bpe.ignore_merges) s << ", ignore_merges";
    int specials = 0;
    for (const auto& a : t.added_tokens) specials += a.special ? 1 : 0;
    s << ", added tokens " << t.added_tokens.size() << " (" << specials << " special)";
    auto name = [&](const std::optional<int>& id) {
        return id ? t.token_bytes[*id] + " (" + std::to_string(*id) + ")" : std::string("none");
    };
    s << ", bos " << name(t.bos) << ", eos " << name(t.eos) << ", add_bos "
      << (t.add_bos ? "true" : "false");
    return s.str();
}

}  // namespace tinygpt
