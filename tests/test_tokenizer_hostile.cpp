// Hostile tokenizer files: each must end in a tinygpt::Error that names the source and the field,
// never a crash or a silently wrong tokenizer. And the `tinygpt tokenizer` command end to end.
#include <gtest/gtest.h>

#include <fstream>

#include "cli_harness.h"
#include "scratch_dir.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer_files.h"
#include "util/error.h"

namespace tinygpt::test {
namespace {

nlohmann::json bytes_doc() {
    return nlohmann::json::parse(Tokenizer::bytes().to_hf_json());
}

void expect_refused(const std::string& text, const std::vector<std::string>& names) {
    try {
        Tokenizer::from_hf_json(text, "", "bad.json");
        ADD_FAILURE() << "accepted: " << text.substr(0, 200);
    } catch (const Error& e) {
        const std::string what = e.what();
        EXPECT_EQ(what.rfind("bad.json: ", 0), 0u) << what;
        for (const auto& n : names)
            EXPECT_NE(what.find(n), std::string::npos) << "'" << n << "' not in: " << what;
    }
}

TEST(HostileTokenizerJson, IsRefusedWithAClearError) {
    expect_refused("{not json", {"not valid JSON"});
    expect_refused("[1,2]", {"expected a JSON object"});
    expect_refused("{}", {"model"});
    auto with = [](auto edit) {
        nlohmann::json doc = bytes_doc();
        edit(doc);
        return doc.dump();
    };
    expect_refused(with([](auto& d) { d["model"]["type"] = "WordPiece"; }),
                   {"model.type", "WordPiece"});
    expect_refused(with([](auto& d) { d["model"]["type"] = "Unigram"; }),
                   {"model.type", "Unigram"});
    expect_refused(with([](auto& d) { d["model"]["byte_fallback"] = true; }),
                   {"model.byte_fallback"});
    expect_refused(with([](auto& d) { d["model"]["dropout"] = 0.1; }), {"model.dropout", "0.1"});
    expect_refused(with([](auto& d) { d["model"]["continuing_subword_prefix"] = "##"; }),
                   {"continuing_subword_prefix"});
    expect_refused(with([](auto& d) { d["model"]["vocab"] = 3; }), {"model.vocab"});
    expect_refused(with([](auto& d) { d["model"]["vocab"]["x"] = "7"; }),
                   {"model.vocab[\"x\"]", "integer"});
    expect_refused(with([](auto& d) { d["model"]["vocab"]["xy"] = -5; }), {"negative id"});
    expect_refused(with([](auto& d) { d["model"]["vocab"]["xy"] = 1e15; }),
                   {"model.vocab[\"xy\"]"});
    expect_refused(with([](auto& d) { d["model"]["vocab"]["xy"] = 123456789012; }),
                   {"out of range"});
    expect_refused(with([](auto& d) { d["model"]["vocab"]["xy"] = 65; }), {"also the id of"});
    // Found by fuzz_tokenizer: one id near the 2^24 limit made a 4 KB file allocate 1.1 GB of
    // tables. Ids may leave at most 2^20 unused below them.
    expect_refused(with([](auto& d) { d["model"]["vocab"]["xy"] = (1 << 24) - 1; }),
                   {"model.vocab", "id 16777215 leaves 16776959 ids below it without a token"});
    expect_refused(with([](auto& d) {
                       d["added_tokens"] = {{{"id", 5000000}, {"content", "<|x|>"}}};
                   }),
                   {"added_tokens[0].id", "id 5000000 leaves"});
    expect_refused(with([](auto& d) { d["model"]["vocab"].erase("A"); }),
                   {"no token for byte 0x41"});
    expect_refused(with([](auto& d) { d["model"]["merges"] = {"a b"}; }),
                   {"model.merges[0]", "\"ab\"", "not in model.vocab"});
    expect_refused(with([](auto& d) { d["model"]["merges"] = {"a q z"}; }), {"model.merges[0]"});
    expect_refused(with([](auto& d) { d["model"]["merges"] = {42}; }), {"model.merges[0]"});
    expect_refused(with([](auto& d) { d["model"]["merges"] = {"a zz"}; }),
                   {"model.merges[0]", "\"zz\""});
    // The merges and the vocabulary are read without a DOM (tokenizer/hf_json_reader.cpp): each
    // malformed entry of either still gets its own error.
    // Arrays built with push_back: brace-initialising a one-element array of arrays is read as
    // a copy of the inner array by some compilers (clang) and not by others.
    const auto merges_of = [](nlohmann::json merge) {
        nlohmann::json merges = nlohmann::json::array();
        merges.push_back(std::move(merge));
        return merges;
    };
    const auto refused_merge = [&](nlohmann::json merge, const std::string& what) {
        expect_refused(with([&](auto& d) { d["model"]["merges"] = merges_of(merge); }),
                       {"model.merges[0]", what});
    };
    refused_merge(nlohmann::json::array({"a"}), "an array of 1 strings");
    refused_merge(nlohmann::json::array({"a", "b", "c"}), "an array of 3 strings");
    refused_merge(nlohmann::json::array({"a", 1}), "not a string");
    nlohmann::json nested = nlohmann::json::array();
    nested.push_back("a");
    nested.push_back(nlohmann::json::array({"b"}));
    refused_merge(nested, "not a string");
    expect_refused(with([](auto& d) {
                       d["model"]["merges"] = nlohmann::json::array({nlohmann::json::object()});
                   }),
                   {"model.merges[0]", "an object"});
    expect_refused(with([](auto& d) {
                       d["model"]["vocab"]["ab"] = 256;
                       d["model"]["merges"] = {"a b", nullptr};
                   }),
                   {"model.merges[1]", "got null"});
    expect_refused(with([](auto& d) {
                       d["model"]["vocab"]["xy"] = {{"id", 300}};
                   }),
                   {"model.vocab[\"xy\"]", "integer", "object"});
    expect_refused(with([](auto& d) { d["model"]["vocab"]["xy"] = {300}; }),
                   {"model.vocab[\"xy\"]", "integer", "array"});
    expect_refused(with([](auto& d) { d["model"]["merges"] = "a b"; }),
                   {"model.merges", "expected an array"});
    {
        // A spelling named twice (a DOM would have kept the last one silently).
        std::string text = bytes_doc().dump();
        const size_t vocab = text.find("\"vocab\":{");
        ASSERT_NE(vocab, std::string::npos);
        text.insert(vocab + 9, "\"A\":300,");
        expect_refused(text, {"model.vocab[\"A\"]", "named twice"});
    }
    expect_refused(with([](auto& d) {
                       d["normalizer"] = {{"type", "Lowercase"}};
                   }),
                   {"normalizer.type", "Lowercase"});
    expect_refused(with([](auto& d) {
                       d["pre_tokenizer"] = {{"type", "Metaspace"}};
                   }),
                   {"pre_tokenizer.type", "Metaspace"});
    expect_refused(with([](auto& d) { d["pre_tokenizer"] = nullptr; }),
                   {"pre_tokenizer", "ByteLevel"});
    expect_refused(with([](auto& d) {
                       d["pre_tokenizer"] = {{"type", "Sequence"},
                                             {"pretokenizers",
                                              {{{"type", "Split"},
                                                {"pattern", {{"Regex", "(unclosed"}}},
                                                {"behavior", "Isolated"}},
                                               {{"type", "ByteLevel"}}}}};
                   }),
                   {"pre_tokenizer.pretokenizers[0].pattern.Regex", "invalid regex"});
    expect_refused(with([](auto& d) {
                       d["pre_tokenizer"] = {{"type", "Split"},
                                             {"pattern", {{"String", "-"}}},
                                             {"behavior", "Sideways"}};
                   }),
                   {"behavior", "Sideways"});
    expect_refused(with([](auto& d) {
                       d["decoder"] = {{"type", "WordPiece"}};
                   }),
                   {"decoder.type", "WordPiece"});
    expect_refused(with([](auto& d) {
                       d["added_tokens"] = {{{"id", "x"}, {"content", "<a>"}}};
                   }),
                   {"added_tokens[0].id"});
    expect_refused(with([](auto& d) {
                       d["added_tokens"] = {{{"id", 300}, {"content", ""}}};
                   }),
                   {"added_tokens[0].content", "empty"});
    expect_refused(
        with([](auto& d) {
            d["added_tokens"] = {{{"id", 300}, {"content", "<a>"}, {"single_word", true}}};
        }),
        {"single_word"});
    expect_refused(with([](auto& d) {
                       d["added_tokens"] = {{{"id", 300}, {"content", "<a>"}},
                                            {{"id", 300}, {"content", "<b>"}}};
                   }),
                   {"added_tokens[1].id"});
    // tokenizer_config.json naming a token that does not exist.
    EXPECT_THROW(
        Tokenizer::from_hf_json(bytes_doc().dump(), R"({"eos_token": "<nope>"})", "bad.json"),
        Error);
    EXPECT_THROW(Tokenizer::from_hf_json(bytes_doc().dump(), "{oops", "bad.json"), Error);
}

// tokenizer.json's key order and merge spelling are the writer's choice: "merges" before or after
// "vocab", each merge as "a b" or ["a", "b"] (HF writes arrays since tokenizers 0.20, so that a
// token may hold a space); the same tokenizer comes out of all of them. A "vocab" or "merges"
// key outside "model" is other data, kept as it is.
TEST(TokenizerJsonForms, KeyOrderAndMergeSpellingsGiveTheSameTokenizer) {
    BpeTrainOptions options;
    options.vocab_size = 330;
    options.special_tokens = {"<|endoftext|>"};
    std::string corpus;
    for (int i = 0; i < 30; ++i)
        corpus += "the quick brown fox jumps over the lazy dog, said she.\n";
    const Tokenizer trained = train_bpe(corpus, options);
    const nlohmann::ordered_json written = nlohmann::ordered_json::parse(trained.to_hf_json());
    ASSERT_GT(written["model"]["merges"].size(), 20u);

    nlohmann::ordered_json merges_first = written;
    merges_first["model"].erase("vocab");
    merges_first["model"]["vocab"] = written["model"]["vocab"];  // now after "merges"
    nlohmann::ordered_json as_arrays = written;
    for (auto& m : as_arrays["model"]["merges"]) {
        if (!m.is_string()) continue;
        const std::string text = m.get<std::string>();
        m = {text.substr(0, text.find(' ')), text.substr(text.find(' ') + 1)};
    }
    nlohmann::ordered_json as_strings = written;
    for (auto& m : as_strings["model"]["merges"])
        if (m.is_array()) m = m[0].get<std::string>() + " " + m[1].get<std::string>();
    nlohmann::ordered_json other_tables = written;
    other_tables["vocab"] = {{"x", "not a token"}};
    other_tables["normalizer"] = nullptr;
    other_tables["extra"] = {{"model", {{"vocab", {{"y", 1}}}, {"merges", {"q r"}}}}};

    const std::string text = "The lazy dog said: the quick brown fox!<|endoftext|> again";
    for (const auto& form : {merges_first, as_arrays, as_strings, other_tables}) {
        const Tokenizer loaded = Tokenizer::from_hf_json(form.dump(), "", "form.json");
        EXPECT_EQ(loaded.encode(text), trained.encode(text)) << form.dump().substr(0, 300);
        EXPECT_EQ(loaded.vocab_size(), trained.vocab_size());
        EXPECT_EQ(loaded.to_hf_json(), trained.to_hf_json());
    }
}

// GPT-2's encoder.json + vocab.bpe pair, on a small pair written here: CRLF lines and the
// "#version" header accepted, <|endoftext|> made the special end-of-text token, and every bad
// input refused naming its file (and line).
TEST(Gpt2Pair, LoadsAndRefusesBadFilesNamingThem) {
    const ScratchDir dir("gpt2-pair");
    nlohmann::json encoder = bytes_doc()["model"]["vocab"];
    encoder["\u0120t"] = 256;  // "Ġt": a space and "t"
    encoder["<|endoftext|>"] = 257;
    const auto write = [&](const std::string& name, const std::string& text) {
        std::ofstream(dir.file(name), std::ios::binary) << text;
    };
    write("encoder.json", encoder.dump());
    write("vocab.bpe", "#version: 0.2\r\n\u0120 t\r\n");
    const Tokenizer tok = Tokenizer::load(dir.path().string());
    EXPECT_EQ(tok.encode("a t<|endoftext|>"), (std::vector<int>{'a', 256, 257}));
    EXPECT_EQ(tok.eos_id(), 257);
    EXPECT_EQ(tok.bos_id(), 257);
    EXPECT_FALSE(tok.add_bos());
    EXPECT_EQ(Tokenizer::load(dir.file("vocab.bpe")).encode(" t"), std::vector<int>{256});

    const auto refused = [&](const std::vector<std::string>& names) {
        try {
            Tokenizer::load(dir.path().string());
            ADD_FAILURE() << "accepted";
        } catch (const Error& e) {
            for (const auto& n : names)
                EXPECT_NE(std::string(e.what()).find(n), std::string::npos) << e.what();
        }
    };
    write("vocab.bpe", "#version: 0.2\n\u0120 t\na b c\n");
    refused({"vocab.bpe", "line 3", "two tokens"});
    write("vocab.bpe", "\u0120 q\n");
    refused({"model.merges[0]", "not in model.vocab"});
    write("vocab.bpe", "\u0120 t\n");
    write("encoder.json", "[1, 2]");
    refused({"encoder.json", "expected an object"});
    write("encoder.json", "{\"a\": 1");
    refused({"encoder.json", "not valid JSON"});
    encoder["\u0120t"] = "256";
    write("encoder.json", encoder.dump());
    refused({"model.vocab[\"\u0120t\"]", "integer"});
    encoder.erase("<|endoftext|>");
    encoder["\u0120t"] = 256;
    write("encoder.json", encoder.dump());
    EXPECT_FALSE(Tokenizer::load(dir.path().string()).eos_id().has_value());
}

TEST(HostileTokenizerJson, IdsMayLeaveAMillionUnused) {
    nlohmann::json doc = bytes_doc();
    doc["added_tokens"] = {{{"id", 1 << 20}, {"content", "<|far|>"}, {"special", true}}};
    const Tokenizer tok = Tokenizer::from_hf_json(doc.dump(), "", "sparse.json");
    EXPECT_EQ(tok.vocab_size(), (1 << 20) + 1);
    EXPECT_EQ(tok.encode("a<|far|>"), (std::vector<int>{'a', 1 << 20}));
}

TEST(HostileTokenizerJson, MissingFilesNameThePath) {
    try {
        Tokenizer::load("/nonexistent/tokenizer.json");
        FAIL();
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("/nonexistent/tokenizer.json"), std::string::npos);
    }
}

TEST_F(CliRuns, TokenizerTrainEncodeDecodeInfo) {
    const std::string out = (dir_ / "tok.json").string();
    auto r = run({"tokenizer", "train", "--corpus", corpus_.string(), "--vocab", "300", "--special",
                  "<|endoftext|>", "--out", out});
    ASSERT_EQ(r.exit_code, 0) << r.describe();
    EXPECT_NE(r.out.find("trained"), std::string::npos) << r.describe();
    EXPECT_TRUE(fs::exists(out));
    const std::string text = "ROMEO: speak, speak.<|endoftext|>é";
    r = run({"tokenizer", "encode", out, "--text", text});
    ASSERT_EQ(r.exit_code, 0) << r.describe();
    const Tokenizer tok = Tokenizer::load(out);
    std::string expected;
    for (int id : tok.encode(text)) expected += (expected.empty() ? "" : ",") + std::to_string(id);
    EXPECT_EQ(r.out, expected + "\n");
    r = run({"tokenizer", "decode", out, "--ids", expected});
    ASSERT_EQ(r.exit_code, 0) << r.describe();
    EXPECT_EQ(r.out, text);  // exactly the bytes, nothing added
    write_file(dir_ / "text.txt", text);
    r = run({"tokenizer", "encode", "bytes", "--file", (dir_ / "text.txt").string(), "--json"});
    ASSERT_EQ(r.exit_code, 0) << r.describe();
    EXPECT_EQ(nlohmann::json::parse(r.out)["ids"].size(), text.size());
    r = run({"tokenizer", "info", out});
    ASSERT_EQ(r.exit_code, 0) << r.describe();
    EXPECT_NE(r.out.find("vocab 300"), std::string::npos) << r.describe();
}

TEST_F(CliErrors, TokenizerBadInputs) {
    expect_clean_error(run({"tokenizer", "encode", "/nonexistent/tok.json", "--text", "x"}),
                       {"/nonexistent/tok.json"});
    expect_clean_error(run({"tokenizer", "decode", "bytes", "--ids", "1,x,3"}), {"--ids", "x"});
    expect_clean_error(run({"tokenizer", "decode", "bytes", "--ids", "1,999"}), {"999"});
    expect_clean_error(run({"tokenizer", "encode", "bytes"}), {"--text"});
    expect_clean_error(run({"tokenizer", "train", "--corpus", corpus_.string(), "--vocab", "10",
                            "--out", (dir_ / "t.json").string()}),
                       {"vocab_size"});
    write_file(dir_ / "bad.json", "{\"model\": 1}");
    expect_clean_error(run({"tokenizer", "info", (dir_ / "bad.json").string()}),
                       {"bad.json", "model"});
}

}  // namespace
}  // namespace tinygpt::test
