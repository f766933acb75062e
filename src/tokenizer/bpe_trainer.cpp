// train_bpe: byte-level BPE learning with incremental pair counts. Words (GPT-2 pre-tokens) are
// counted once, in parallel; then each merge touches only the words that contain the merged pair
// (pair -> words index), and the best pair comes from a max-heap whose stale entries are
// re-checked when popped, instead of a rescan of all pairs per merge.
#include <algorithm>
#include <nlohmann/json.hpp>
#include <queue>
#include <unordered_map>

#include "tokenizer/added_tokens.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/pre_tokenizer.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/tokenizer_impl.h"
#include "util/error.h"
#include "util/parallel.h"

namespace tinygpt {

namespace {

using WordCounts = std::unordered_map<std::string, int64_t, StringHash, std::equal_to<>>;

// Counting blocks: about this many bytes, each ending after a '\n' that is followed by a
// non-whitespace byte, where GPT-2's pattern always ends a match. Fixed positions keep the
// counts independent of the thread count.
constexpr size_t kCountBlockBytes = 1 << 20;

std::vector<std::pair<size_t, size_t>> counting_blocks(std::string_view corpus) {
    std::vector<std::pair<size_t, size_t>> blocks;
    size_t begin = 0;
    while (begin < corpus.size()) {
        size_t end = std::min(corpus.size(), begin + kCountBlockBytes);
        while (end < corpus.size()) {
            const char next = corpus[end];
            if (corpus[end - 1] == '\n' && next != ' ' && next != '\n' && next != '\r' &&
                next != '\t' && static_cast<unsigned char>(next) < 0x80)
                break;
            ++end;
        }
        blocks.emplace_back(begin, end);
        begin = end;
    }
    return blocks;
}

class CountingSink : public PieceSink {
  public:
    explicit CountingSink(WordCounts& counts) : counts_(counts) {}
    void piece(std::string_view word) override {
        const auto it = counts_.find(word);
        if (it != counts_.end())
            ++it->second;
        else
            counts_.emplace(std::string(word), 1);
    }

  private:
    WordCounts& counts_;
};

WordCounts count_words(std::string_view corpus, const AddedTokenMatcher& specials) {
    PreTokenizer gpt2;
    PreTokenizerStep step;
    step.kind = PreTokenizerStep::Kind::ByteLevel;
    step.regex = std::make_shared<Regex>(kGpt2Pattern, "GPT-2 pattern");
    gpt2.add(step);
    const auto blocks = counting_blocks(corpus);
    std::vector<WordCounts> partial(blocks.size());
    parallel_for_dynamic(blocks.size(), true, [&](long b) {
        CountingSink sink(partial[b]);
        const std::string_view block =
            corpus.substr(blocks[b].first, blocks[b].second - blocks[b].first);
        specials.split(
            block, [&](std::string_view part) { gpt2.run(part, sink); }, [](int) {});
    });
    WordCounts total = partial.empty() ? WordCounts{} : std::move(partial[0]);
    for (size_t b = 1; b < partial.size(); ++b)
        for (auto& [word, count] : partial[b]) total[word] += count;
    return total;
}

uint64_t pack(int32_t a, int32_t b) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
}

struct MergeTrainer {
    std::vector<std::vector<int32_t>> words;  // symbols of each distinct word
    std::vector<int64_t> freq;
    std::vector<std::string> token;  // raw bytes by id
    std::unordered_map<std::string, int32_t> id_of_token;
    std::unordered_map<uint64_t, int64_t> pair_count;
    std::unordered_map<uint64_t, std::vector<int32_t>> pair_words;

    struct Entry {
        int64_t count;
        uint64_t pair;
    };
    // Highest count first; ties: the lexicographically smallest (left bytes, right bytes).
    struct Worse {
        const MergeTrainer* t;
        bool operator()(const Entry& x, const Entry& y) const {
            if (x.count != y.count) return x.count < y.count;
            const std::string& xl = t->token[x.pair >> 32];
            const std::string& yl = t->token[y.pair >> 32];
            if (xl != yl) return xl > yl;
            return t->token[x.pair & 0xffffffffu] > t->token[y.pair & 0xffffffffu];
        }
    };
    std::priority_queue<Entry, std::vector<Entry>, Worse> heap{Worse{this}};

    void add_pairs(int32_t w, int64_t sign, int32_t only_with = -1) {
        const auto& s = words[w];
        for (size_t i = 0; i + 1 < s.size(); ++i) {
            const uint64_t p = pack(s[i], s[i + 1]);
            pair_count[p] += sign * freq[w];
            if (sign > 0 && (only_with < 0 || s[i] == only_with || s[i + 1] == only_with))
                pair_words[p].push_back(w);
        }
    }
};

}  // namespace

Tokenizer train_bpe(std::string_view corpus, const BpeTrainOptions& options) {
    const int specials = static_cast<int>(options.special_tokens.size());
    if (options.vocab_size < 256 + specials)
        throw Error("train_bpe: vocab_size " + std::to_string(options.vocab_size) +
                    " is below 256 byte tokens + " + std::to_string(specials) + " special tokens");
    if (options.min_frequency < 1)
        throw Error("train_bpe: min_frequency must be at least 1, got " +
                    std::to_string(options.min_frequency));
    require_valid_utf8(corpus);
    AddedTokenMatcher special_matcher;
    for (size_t i = 0; i < options.special_tokens.size(); ++i) {
        if (options.special_tokens[i].empty()) throw Error("train_bpe: a special token is empty");
        special_matcher.add(options.special_tokens[i], static_cast<int>(i), false, false);
    }

    MergeTrainer t;
    {
        WordCounts counts = count_words(corpus, special_matcher);
        // Sorted words: the word order (and so every tie in the lists) is independent of hashing.
        std::vector<std::pair<std::string, int64_t>> sorted(counts.begin(), counts.end());
        std::sort(sorted.begin(), sorted.end());
        for (auto& [word, count] : sorted) {
            std::vector<int32_t> symbols(word.begin(), word.end());
            for (auto& s : symbols) s = static_cast<unsigned char>(s);
            t.words.push_back(std::move(symbols));
            t.freq.push_back(count);
        }
    }
    for (int b = 0; b < 256; ++b) {
        t.token.emplace_back(1, static_cast<char>(b));
        t.id_of_token.emplace(t.token.back(), b);
    }
    for (int32_t w = 0; w < static_cast<int32_t>(t.words.size()); ++w) t.add_pairs(w, 1);
    for (const auto& [pair, count] : t.pair_count)
        if (count > 0) t.heap.push({count, pair});

    const int target = options.vocab_size - specials;
    const int merges_total = target - 256;
    std::vector<std::pair<int32_t, int32_t>> merges;
    while (static_cast<int>(t.token.size()) < target && !t.heap.empty()) {
        const auto top = t.heap.top();
        t.heap.pop();
        const int64_t current = t.pair_count[top.pair];
        if (current != top.count) {  // stale: re-queue with the current count
            if (current > 0) t.heap.push({current, top.pair});
            continue;
        }
        if (current < options.min_frequency) break;
        const auto a = static_cast<int32_t>(top.pair >> 32);
        const auto b = static_cast<int32_t>(top.pair & 0xffffffffu);
        std::string merged = t.token[a] + t.token[b];
        int32_t c;
        if (const auto it = t.id_of_token.find(merged); it != t.id_of_token.end()) {
            c = it->second;
        } else {
            c = static_cast<int32_t>(t.token.size());
            t.id_of_token.emplace(merged, c);
            t.token.push_back(std::move(merged));
        }
        merges.emplace_back(a, b);
        std::vector<int32_t> affected = std::move(t.pair_words[top.pair]);
        t.pair_words.erase(top.pair);
        std::sort(affected.begin(), affected.end());
        affected.erase(std::unique(affected.begin(), affected.end()), affected.end());
        std::vector<uint64_t> touched;
        for (int32_t w : affected) {
            auto& s = t.words[w];
            bool has = false;
            for (size_t i = 0; i + 1 < s.size(); ++i)
                if (s[i] == a && s[i + 1] == b) has = true;
            if (!has) continue;
            t.add_pairs(w, -1);
            std::vector<int32_t> next;
            next.reserve(s.size());
            for (size_t i = 0; i < s.size();) {
                if (i + 1 < s.size() && s[i] == a && s[i + 1] == b) {
                    next.push_back(c);
                    i += 2;
                } else {
                    next.push_back(s[i++]);
                }
            }
            s = std::move(next);
            t.add_pairs(w, 1, c);
            for (size_t i = 0; i + 1 < s.size(); ++i)
                if (s[i] == c || s[i + 1] == c) touched.push_back(pack(s[i], s[i + 1]));
        }
        std::sort(touched.begin(), touched.end());
        touched.erase(std::unique(touched.begin(), touched.end()), touched.end());
        for (uint64_t p : touched)
            if (t.pair_count[p] > 0) t.heap.push({t.pair_count[p], p});
        if (options.progress && (merges.size() % 64 == 0))
            options.progress(static_cast<int>(merges.size()), merges_total);
    }
    if (options.progress) options.progress(static_cast<int>(merges.size()), merges_total);

    // The tokenizer.json, loaded through the same path as any other.
    nlohmann::json vocab = nlohmann::json::object();
    for (size_t id = 0; id < t.token.size(); ++id) vocab[byte_level::encode(t.token[id])] = id;
    nlohmann::json merge_list = nlohmann::json::array();
    for (const auto& [a, b] : merges)
        merge_list.push_back({byte_level::encode(t.token[a]), byte_level::encode(t.token[b])});
    nlohmann::json added = nlohmann::json::array();
    for (int i = 0; i < specials; ++i)
        added.push_back({{"id", static_cast<int>(t.token.size()) + i},
                         {"content", options.special_tokens[i]},
                         {"single_word", false},
                         {"lstrip", false},
                         {"rstrip", false},
                         {"normalized", false},
                         {"special", true}});
    const nlohmann::json byte_level_block = {{"type", "ByteLevel"},
                                             {"add_prefix_space", false},
                                             {"trim_offsets", true},
                                             {"use_regex", true}};
    const nlohmann::json doc = {
        {"version", "1.0"},
        {"added_tokens", added},
        {"normalizer", nullptr},
        {"pre_tokenizer", byte_level_block},
        {"post_processor", nullptr},
        {"decoder", byte_level_block},
        {"model",
         {{"type", "BPE"}, {"dropout", nullptr}, {"vocab", vocab}, {"merges", merge_list}}}};
    return Tokenizer::from_hf_json(doc.dump(), "", "train_bpe");
}

}  // namespace tinygpt
