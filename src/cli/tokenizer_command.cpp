// `tinygpt tokenizer train|encode|decode|info`: learn a byte-level BPE from a corpus, and run any
// tokenizer (bytes, an HF tokenizer.json or directory, GPT-2's encoder.json + vocab.bpe) on text.
#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "io/atomic_write.h"
#include "io/format_internal.h"
#include "io/read_file.h"
#include "load/model_source.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"
#include "util/sysinfo.h"

namespace tinygpt::cli {

namespace {

std::string read_whole_file(const std::string& path, const char* what) {
    try {
        return read_file_bytes(path);
    } catch (const Error& e) {
        throw Error(std::string(what) + " " + e.what());
    }
}

void write_stdout(const std::string& bytes) {
    if (std::fwrite(bytes.data(), 1, bytes.size(), stdout) != bytes.size() ||
        std::fflush(stdout) != 0)
        throw Error("cannot write to stdout");
}

std::vector<int> parse_ids(const std::string& text) {
    std::vector<int> ids;
    size_t i = 0;
    while (i < text.size()) {
        const size_t comma = text.find(',', i);
        const std::string item =
            text.substr(i, comma == std::string::npos ? std::string::npos : comma - i);
        size_t used = 0;
        long long value = 0;
        try {
            value = std::stoll(item, &used);
        } catch (const std::exception&) {
            used = 0;
        }
        // Surrounding spaces are fine ("1, 2"); anything else is not an id.
        while (used < item.size() && item[used] == ' ') ++used;
        if (item.find_first_not_of(' ') == std::string::npos || used != item.size() ||
            value < INT32_MIN || value > INT32_MAX)
            throw Error("--ids: \"" + item + "\" is not an integer id (expected e.g. --ids 1,2,3)");
        ids.push_back(static_cast<int>(value));
        if (comma == std::string::npos) break;
        i = comma + 1;
    }
    return ids;
}

}  // namespace

// TOKENIZER argument -> tokenizer: "bytes", a tokenizer.json, an HF directory, or GPT-2's pair.

void register_tokenizer(CLI::App& app) {
    CLI::App* cmd = app.add_subcommand("tokenizer",
                                       "Train, run and inspect tokenizers (bytes, byte-level BPE)");
    cmd->require_subcommand(1);
    const std::string tokenizer_help =
        "bytes, a tokenizer.json, an HF directory, GPT-2's encoder.json + vocab.bpe (dir or "
        "file), or a .tinygpt model (its stored tokenizer)";

    // --- train
    struct TrainArgs {
        std::string corpus, out;
        int vocab = 0, min_frequency = 2;
        std::vector<std::string> specials;
    };
    auto train = std::make_shared<TrainArgs>();
    CLI::App* t = cmd->add_subcommand(
        "train", "Learn a byte-level BPE (GPT-2 pre-tokenization) from a corpus");
    t->add_option("--corpus", train->corpus, "UTF-8 text file")->required();
    t->add_option("--vocab", train->vocab,
                  "vocabulary size, incl. the 256 byte tokens and the specials")
        ->required();
    t->add_option("--special", train->specials,
                  "special token (repeatable), added at the end of the vocab")
        ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
    t->add_option("--min-frequency", train->min_frequency,
                  "stop when the best pair occurs fewer times")
        ->capture_default_str();
    t->add_option("--out", train->out, "tokenizer.json to write (crash-safe)")->required();
    t->callback([train] {
        const std::string corpus = read_whole_file(train->corpus, "--corpus");
        BpeTrainOptions options;
        options.vocab_size = train->vocab;
        options.special_tokens = train->specials;
        options.min_frequency = train->min_frequency;
        int last_percent = -1;
        options.progress = [&](int done, int total) {
            const int percent = total > 0 ? done * 100 / total : 100;
            if (percent / 10 == last_percent / 10 && done != total) return;
            last_percent = percent;
            std::fprintf(stderr, "\rmerges %d / %d", done, total);
            std::fflush(stderr);
        };
        const auto start = std::chrono::steady_clock::now();
        const Tokenizer tok = train_bpe(corpus, options);
        const double seconds =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        std::fprintf(stderr, "\n");
        const std::string json = tok.to_hf_json();
        io::atomic_write_file(train->out,
                              [&](io::FileSink& sink) { sink.write(json.data(), json.size()); });
        std::printf("trained %s on %zu bytes in %.2f s\nwrote %s\n", tok.describe().c_str(),
                    corpus.size(), seconds, train->out.c_str());
    });

    // --- encode
    struct EncodeArgs {
        std::string tokenizer, text, file;
        bool json = false;
    };
    auto enc = std::make_shared<EncodeArgs>();
    CLI::App* e =
        cmd->add_subcommand("encode", "Text -> ids (as HF encode(text, add_special_tokens=False))");
    e->add_option("TOKENIZER", enc->tokenizer, tokenizer_help)->required();
    auto* text_opt = e->add_option("--text", enc->text, "the text");
    auto* file_opt = e->add_option("--file", enc->file, "a file holding the text");
    text_opt->excludes(file_opt);
    e->add_flag("--json", enc->json, "print {\"ids\": [...]} instead of comma-separated ids");
    e->callback([enc, text_opt, file_opt] {
        if (text_opt->count() == 0 && file_opt->count() == 0)
            throw Error("tokenizer encode: give --text or --file");
        const Tokenizer tok = load_tokenizer(enc->tokenizer);
        const std::string text =
            file_opt->count() ? read_whole_file(enc->file, "--file") : enc->text;
        const std::vector<int> ids = tok.encode_parallel(text, num_threads());
        std::string out;
        if (enc->json) {
            out = nlohmann::json{{"ids", ids}}.dump() + "\n";
        } else {
            for (size_t i = 0; i < ids.size(); ++i) {
                if (i) out += ',';
                out += std::to_string(ids[i]);
            }
            out += '\n';
        }
        write_stdout(out);
    });

    // --- decode
    struct DecodeArgs {
        std::string tokenizer, ids;
    };
    auto dec = std::make_shared<DecodeArgs>();
    CLI::App* d = cmd->add_subcommand(
        "decode", "Ids -> the exact bytes, written to stdout with nothing added");
    d->add_option("TOKENIZER", dec->tokenizer, tokenizer_help)->required();
    d->add_option("--ids", dec->ids, "comma-separated ids, e.g. 1,2,3")->required();
    d->callback([dec] {
        const std::vector<int> ids = parse_ids(dec->ids);
        const Tokenizer tok = load_tokenizer(dec->tokenizer);
        write_stdout(tok.decode(ids));
    });

    // --- info
    auto info_arg = std::make_shared<std::string>();
    CLI::App* i =
        cmd->add_subcommand("info", "Kind, vocabulary, merges, pre-tokenizer, special tokens");
    i->add_option("TOKENIZER", *info_arg, tokenizer_help)->required();
    i->callback([info_arg] {
        const Tokenizer tok = load_tokenizer(*info_arg);
        std::printf("%s\nfingerprint %016llx\n", tok.describe().c_str(),
                    static_cast<unsigned long long>(tok.fingerprint()));
    });
}

}  // namespace tinygpt::cli
