// The bytes tokenizer, pre-tokenizer details (White_Space, split behaviors, added-token options),
// StreamingDecoder and BPE training.
#include <gtest/gtest.h>

#include <fstream>
#include <random>
#include <sstream>
#include <unordered_map>

#include "tokenizer/regex.h"
#include "tokenizer/string_id_table.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/utf8.h"
#include "tokenizer_files.h"
#include "util/error.h"

namespace tinygpt::test {
namespace {

std::string all_bytes() {
    std::string s;
    for (int b = 0; b < 256; ++b) s += static_cast<char>(b);
    return s;
}

std::string shakespeare(size_t bytes) {
    std::ifstream in(std::string(TINYGPT_SOURCE_DIR) + "/data/shakespeare.txt", std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str().substr(0, bytes);
}

// The vocabulary's lookup table against std::unordered_map: keys of every length (the empty one,
// embedded NULs, one key a prefix of another), inserted from empty (so through every growth)
// and after reserve(), duplicates refused with the first id kept.
TEST(StringIdTable, AgreesWithAHashMapThroughGrowth) {
    std::mt19937 rng(7);
    std::vector<std::string> keys = {"", std::string(1, '\0'), std::string("a\0b", 3), "a", "ab"};
    for (int i = 0; i < 5000; ++i) {
        std::string key(rng() % 12, ' ');
        for (char& c : key) c = static_cast<char>(rng() % 4 == 0 ? rng() % 256 : 'a' + rng() % 3);
        keys.push_back(key);
    }
    for (const bool reserved : {false, true}) {
        StringIdTable table;
        if (reserved) table.reserve(keys.size());
        std::unordered_map<std::string, int> reference;
        for (size_t i = 0; i < keys.size(); ++i) {
            const bool fresh = reference.emplace(keys[i], static_cast<int>(i)).second;
            EXPECT_EQ(table.insert(keys[i], static_cast<int>(i)), fresh) << i;
        }
        EXPECT_EQ(table.size(), reference.size());
        for (const auto& [key, id] : reference) EXPECT_EQ(table.find(key), id);
        for (const std::string& absent :
             {std::string("zzzz"), std::string(3, '\0'), std::string(40, 'a')})
            EXPECT_EQ(table.find(absent), reference.count(absent) ? reference[absent] : -1);
    }
    EXPECT_EQ(StringIdTable().find("a"), -1);  // empty table: no slots at all
}

TEST(BytesTokenizer, IdsAreBytesAndRoundTripEveryByte) {
    const Tokenizer tok = Tokenizer::bytes();
    EXPECT_TRUE(tok.is_bytes());
    EXPECT_EQ(tok.vocab_size(), 256);
    const std::string text = all_bytes() + "\xff\xfe invalid UTF-8 is fine here";
    const std::vector<int> ids = tok.encode(text);
    ASSERT_EQ(ids.size(), text.size());
    for (size_t i = 0; i < ids.size(); ++i) EXPECT_EQ(ids[i], static_cast<unsigned char>(text[i]));
    EXPECT_EQ(tok.decode(ids), text);
    EXPECT_EQ(tok.encode_parallel(text, 2), ids);
    EXPECT_FALSE(tok.eos_id().has_value());
    EXPECT_THROW(tok.decode(std::vector<int>{256}), Error);
    EXPECT_THROW(tok.decode(std::vector<int>{-1}), Error);
}

TEST(BytesTokenizer, ItsHfJsonReloadsAsTheSameTokenizer) {
    const Tokenizer tok = Tokenizer::bytes();
    const Tokenizer again =
        Tokenizer::from_hf_json(tok.to_hf_json(), tok.to_hf_config_json(), "bytes.json");
    EXPECT_TRUE(again.is_bytes());
    EXPECT_EQ(again.fingerprint(), tok.fingerprint());
    const std::string text = "Hello, wörld! 你好 \n\t" + all_bytes().substr(0, 128);
    EXPECT_EQ(again.encode(text), tok.encode(text));
    EXPECT_EQ(tok.token_id("Ġ"), 32);  // the byte-level spelling of ' '
}

TEST(Regex, WhiteSpaceIsRustsUnicodeWhiteSpace) {
    const Regex re("\\s+", "test");
    size_t b = 0, e = 0;
    for (const char* ws : {"\u0085", "\u00a0", "\u3000", "\u2028", "\t"}) {
        const std::string text = std::string("x") + ws + "y";
        ASSERT_TRUE(re.find(text, 0, b, e)) << ws;
        EXPECT_EQ(b, 1u);
        EXPECT_EQ(e, text.size() - 1);
    }
    // Not White_Space in Unicode (PCRE2's own \s matches U+180E; JavaScript's matches U+FEFF).
    for (const char* not_ws : {"\u180e", "\ufeff", "\u200b"})
        EXPECT_FALSE(re.find(not_ws, 0, b, e)) << not_ws;
    EXPECT_EQ(with_rust_white_space("[^\\s\\p{L}]"),
              "[^\\t\\n\\x{0B}\\f\\r\\x{20}\\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{"
              "2029}\\x{202F}"
              "\\x{205F}\\x{3000}\\p{L}]");
    EXPECT_THROW(Regex("(unclosed", "where"), Error);
}

// A small hand-made tokenizer.json: bytes + a few merges, with the given pre-tokenizer and added
// tokens.
std::string tiny_json(const std::string& pre_tokenizer, const std::string& added = "[]") {
    nlohmann::json vocab = nlohmann::json::object();
    const Tokenizer bytes = Tokenizer::bytes();
    const auto base = nlohmann::json::parse(bytes.to_hf_json());
    vocab = base["model"]["vocab"];
    vocab["ab"] = 256;
    vocab["abc"] = 257;
    nlohmann::json doc = base;
    doc["model"]["vocab"] = vocab;
    doc["model"]["merges"] = nlohmann::json::array({"a b", "ab c"});
    doc["pre_tokenizer"] = nlohmann::json::parse(pre_tokenizer);
    doc["added_tokens"] = nlohmann::json::parse(added);
    return doc.dump();
}

std::vector<std::string> pieces(const Tokenizer& tok, const std::string& text) {
    std::vector<std::string> out;
    for (int id : tok.encode(text)) out.push_back(tok.token_bytes(id));
    return out;
}

TEST(PreTokenizer, SplitBehaviorsFollowHf) {
    auto split = [](const std::string& behavior, bool invert = false) {
        return tiny_json(
            R"({"type":"Sequence","pretokenizers":[{"type":"Split","pattern":{"String":"-"},"behavior":")" +
            behavior + R"(","invert":)" + (invert ? "true" : "false") +
            R"(},{"type":"ByteLevel","add_prefix_space":false,"use_regex":false}]})");
    };
    // Pieces become visible as BPE boundaries: "ab" merges only inside one piece.
    const std::string text = "ab-ab--ab";
    using V = std::vector<std::string>;
    EXPECT_EQ(pieces(Tokenizer::from_hf_json(split("Removed"), "", "t"), text),
              (V{"ab", "ab", "ab"}));
    EXPECT_EQ(pieces(Tokenizer::from_hf_json(split("Isolated"), "", "t"), text),
              (V{"ab", "-", "ab", "-", "-", "ab"}));
    EXPECT_EQ(pieces(Tokenizer::from_hf_json(split("MergedWithPrevious"), "", "t"), text),
              (V{"ab", "-", "ab", "-", "-", "ab"}));
    EXPECT_EQ(pieces(Tokenizer::from_hf_json(split("Contiguous"), "", "t"), text),
              (V{"ab", "-", "ab", "-", "-", "ab"}));
    // With a merge a-b absent across pieces, check boundaries through the merged "ab-" behaviour:
    const std::string dash = "a-b";
    EXPECT_EQ(pieces(Tokenizer::from_hf_json(split("MergedWithNext"), "", "t"), dash),
              (V{"a", "-", "b"}));
    EXPECT_EQ(pieces(Tokenizer::from_hf_json(split("Removed", true), "", "t"), "ab-ab"), (V{"-"}));
}

TEST(PreTokenizer, ByteLevelPrefixSpaceAndDigits) {
    const Tokenizer prefixed = Tokenizer::from_hf_json(
        tiny_json(R"({"type":"ByteLevel","add_prefix_space":true,"use_regex":true})"), "", "t");
    EXPECT_EQ(pieces(prefixed, "ab").front(), " ");
    const Tokenizer digits = Tokenizer::from_hf_json(
        tiny_json(
            R"({"type":"Sequence","pretokenizers":[{"type":"Digits","individual_digits":true},{"type":"ByteLevel","add_prefix_space":false,"use_regex":false}]})"),
        "", "t");
    EXPECT_EQ(digits.encode("a12b").size(), 4u);
}

TEST(AddedTokens, LongestMatchAndStrip) {
    const std::string added =
        R"([{"id":300,"content":"<s>","special":true,"normalized":false},
            {"id":301,"content":"<s>x","special":true,"normalized":false},
            {"id":302,"content":"[R]","special":true,"normalized":false,"lstrip":true,"rstrip":true}])";
    const Tokenizer tok = Tokenizer::from_hf_json(
        tiny_json(R"({"type":"ByteLevel","add_prefix_space":false,"use_regex":true})", added), "",
        "t");
    EXPECT_EQ(tok.encode("<s>xy"), (std::vector<int>{301, 'y'}));
    EXPECT_EQ(tok.encode("a<s>"), (std::vector<int>{'a', 300}));
    EXPECT_EQ(tok.encode("a  [R]  b"), (std::vector<int>{'a', 302, 'b'}));
    EXPECT_EQ(tok.vocab_size(), 303);
    EXPECT_EQ(tok.token_id("<s>x"), 301);
    EXPECT_THROW(tok.decode(std::vector<int>{299}), Error);  // a gap in the ids
}

TEST(Tokenizer, RefusesInvalidUtf8NamingTheOffset) {
    const Tokenizer tok = Tokenizer::from_hf_json(tiny_json(R"({"type":"ByteLevel"})"), "", "t");
    try {
        tok.encode("abc\xff");
        FAIL() << "expected an Error";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("byte offset 3"), std::string::npos) << e.what();
    }
}

TEST(StreamingDecoder, NeverEmitsHalfACharacter) {
    const Tokenizer& tok = real_tokenizer("gpt2");
    const std::string text = "naïve 你好 👩‍👩‍👧 ok 🇫🇷!";
    const std::vector<int> ids = tok.encode(text);
    StreamingDecoder stream(tok);
    std::string joined;
    bool split_char_seen = false;
    for (int id : ids) {
        if (utf8::first_invalid(tok.token_bytes(id)) != std::string::npos) split_char_seen = true;
        const std::string part = stream.push(id);
        EXPECT_EQ(utf8::first_invalid(part), std::string::npos) << "half a character emitted";
        joined += part;
    }
    joined += stream.finish();
    EXPECT_TRUE(split_char_seen) << "the text should split some character over tokens";
    EXPECT_EQ(joined, tok.decode(ids));
}

TEST(StreamingDecoder, FlushesInvalidBytesOnceTheyCannotBecomeValid) {
    const Tokenizer tok = Tokenizer::bytes();
    StreamingDecoder stream(tok);
    EXPECT_EQ(stream.push(0xE4), "");  // could start 你
    EXPECT_EQ(stream.push('a'),
              "\xE4"
              "a");  // no longer: out as it is
    EXPECT_EQ(stream.push(0xF0), "");
    EXPECT_EQ(stream.finish(), "\xF0");
    EXPECT_EQ(stream.push(0xFF), "\xFF");
}

TEST(TrainBpe, IsDeterministicRespectsTheVocabAndRoundTrips) {
    const std::string corpus = shakespeare(200000);
    BpeTrainOptions options;
    options.vocab_size = 600;
    options.special_tokens = {"<|endoftext|>", "<|pad|>"};
    int last_done = -1;
    options.progress = [&](int done, int total) {
        EXPECT_LE(done, total);
        last_done = done;
    };
    const Tokenizer tok = train_bpe(corpus, options);
    EXPECT_EQ(tok.vocab_size(), 600);
    EXPECT_EQ(last_done, 600 - 256 - 2);
    EXPECT_EQ(tok.token_id("<|endoftext|>"), 598);
    EXPECT_EQ(tok.eos_id(), 598);
    const std::string text = corpus.substr(1000, 5000) + "<|endoftext|>x<|pad|>";
    const std::vector<int> ids = tok.encode(text);
    EXPECT_EQ(tok.decode(ids), text);
    EXPECT_LT(ids.size(), text.size() / 2) << "600 tokens should compress Shakespeare";
    EXPECT_EQ(ids[ids.size() - 3], 598);
    EXPECT_EQ(ids.back(), 599);
    // Same input, same tokenizer; the json reloads identically.
    const Tokenizer again = train_bpe(corpus, options);
    EXPECT_EQ(again.fingerprint(), tok.fingerprint());
    const Tokenizer reloaded =
        Tokenizer::from_hf_json(tok.to_hf_json(), tok.to_hf_config_json(), "trained");
    EXPECT_EQ(reloaded.fingerprint(), tok.fingerprint());
    EXPECT_EQ(reloaded.encode(text), ids);
}

TEST(TrainBpe, MinFrequencyStopsEarlyAndBadOptionsAreRefused) {
    BpeTrainOptions options;
    options.vocab_size = 5000;
    options.min_frequency = 1000000;
    EXPECT_EQ(train_bpe("hello hello world", options).vocab_size(), 256);
    options.vocab_size = 100;
    EXPECT_THROW(train_bpe("x", options), Error);
}

}  // namespace
}  // namespace tinygpt::test
