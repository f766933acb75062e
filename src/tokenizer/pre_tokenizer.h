// HF pre-tokenizers that byte-level BPE tokenizers use: Split (regex or literal, with every
// SplitDelimiterBehavior and invert), ByteLevel (add_prefix_space, use_regex with GPT-2's
// pattern), Digits and Sequence. The pieces are raw UTF-8 bytes: the ByteLevel character mapping
// is folded into the vocabulary (whose keys are stored as raw bytes), so it costs nothing here.
#pragma once
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/regex.h"

namespace tinygpt {

// GPT-2's pattern, used by ByteLevel with use_regex=true.
inline constexpr const char* kGpt2Pattern =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

enum class SplitBehavior { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous };

struct PreTokenizerStep {
    enum class Kind { Split, ByteLevel };
    Kind kind = Kind::Split;
    std::shared_ptr<const Regex> regex;  // Split by regex; ByteLevel use_regex; Digits
    std::string literal;                 // Split by a String pattern
    SplitBehavior behavior = SplitBehavior::Isolated;
    bool invert = false;
    bool add_prefix_space = false;  // ByteLevel
};

// Receives the pieces of a pre-tokenized text, in order.
class PieceSink {
  public:
    virtual ~PieceSink() = default;
    virtual void piece(std::string_view bytes) = 0;
};

class PreTokenizer {
  public:
    // Steps that do nothing (a ByteLevel without regex or prefix space) may be left out.
    void add(PreTokenizerStep step);
    // Splits `text` (valid UTF-8) by every step in turn; empty pieces are dropped.
    void run(std::string_view text, PieceSink& sink) const;
    bool empty() const { return steps_.empty(); }

  private:
    void run_from(size_t step, std::string_view text, PieceSink& sink) const;
    void split_step(size_t step, std::string_view text, PieceSink& sink) const;
    std::vector<PreTokenizerStep> steps_;
};

}  // namespace tinygpt
