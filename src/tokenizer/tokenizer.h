// Tokenizers: `bytes` (id = byte value, what every model used before) and byte-level BPE as used
// by GPT-2, Llama 3, Qwen2/Qwen3 and DeepSeek-V3, loaded from Hugging Face tokenizer.json files
// (or GPT-2's encoder.json + vocab.bpe) and encoding exactly as HF tokenizers'
// encode(text, add_special_tokens=False). docs/TOKENIZER.md lists what is supported and refused.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tinygpt {

struct TokenizerImpl;

class Tokenizer {
  public:
    static Tokenizer bytes();  // 256 ids, id = byte value
    // HF tokenizer.json text (+ optional tokenizer_config.json text, "" if none, for
    // bos/eos/add_bos_token). `source` prefixes error messages (e.g. a path).
    static Tokenizer from_hf_json(const std::string& tokenizer_json,
                                  const std::string& tokenizer_config_json,
                                  const std::string& source);
    // A tokenizer.json file; an HF directory (tokenizer.json [+ tokenizer_config.json]); or
    // GPT-2's pair (a directory with encoder.json + vocab.bpe, or the path of either file).
    // Throws Error naming the path.
    static Tokenizer load(const std::string& path);

    bool is_bytes() const;
    int vocab_size() const;  // 1 + the largest id (vocab and added tokens)
    // = HF encode(text, add_special_tokens=False). A BPE tokenizer refuses invalid UTF-8 (HF's
    // input is always a valid string) with an Error naming the byte offset; bytes accepts all.
    std::vector<int> encode(std::string_view text) const;
    // Same ids as encode(); splits the work over `threads` OpenMP threads for large texts; calls
    // progress(bytes_done, bytes_total) now and then if given.
    std::vector<int> encode_parallel(
        std::string_view text, int threads,
        const std::function<void(size_t, size_t)>& progress = {}) const;
    std::string decode(const int* ids, size_t n) const;  // exact bytes; Error for a bad id
    std::string decode(const std::vector<int>& ids) const;
    // The raw bytes a token stands for (special tokens: their content).
    const std::string& token_bytes(int id) const;
    std::optional<int> bos_id() const;
    // End-of-text token if known (tokenizer_config eos_token, else an added special token like
    // <|endoftext|>).
    std::optional<int> eos_id() const;
    bool add_bos() const;
    // Vocab lookup by the token's spelling in tokenizer.json (byte-level characters, e.g.
    // "Ġthe"), else an added token's content.
    std::optional<int> token_id(const std::string& content) const;
    // Canonical HF tokenizer.json text that HF tokenizers / transformers.js load and that encodes
    // identically; for bytes(): a ByteLevel BPE with the 256 byte characters at ids = byte
    // values, no merges, ByteLevel pre-tokenizer with use_regex=false and a ByteLevel decoder.
    std::string to_hf_json() const;
    // tokenizer_config.json text (bos/eos/add_bos_token; model_max_length omitted).
    std::string to_hf_config_json() const;
    std::string describe() const;  // one line: kind, vocab, merges, pre-tokenizer, specials
    uint64_t fingerprint() const;  // xxh3 of the canonical serialisation

    const TokenizerImpl& impl() const { return *impl_; }  // for the module's own files

  private:
    explicit Tokenizer(std::shared_ptr<const TokenizerImpl> impl) : impl_(std::move(impl)) {}
    friend Tokenizer make_tokenizer(std::shared_ptr<const TokenizerImpl> impl);
    std::shared_ptr<const TokenizerImpl> impl_;
};

// Incremental decode for streaming output: never emits half a UTF-8 character.
class StreamingDecoder {
  public:
    explicit StreamingDecoder(const Tokenizer& tok);
    // Bytes now complete (whole UTF-8 characters; invalid sequences flushed as-is once they can
    // no longer become valid).
    std::string push(int id);
    std::string finish();  // whatever is left

  private:
    Tokenizer tok_;
    std::string pending_;
};

struct BpeTrainOptions {
    int vocab_size = 2048;                    // total incl. 256 byte tokens and specials
    std::vector<std::string> special_tokens;  // added as special tokens at the end
    int min_frequency = 2;
    std::function<void(int merges_done, int merges_total)> progress;
};

// Learns a byte-level BPE with GPT-2-style pre-tokenization (GPT-2's regex via ByteLevel
// use_regex=true, add_prefix_space=false).
Tokenizer train_bpe(std::string_view corpus, const BpeTrainOptions& options);

}  // namespace tinygpt
