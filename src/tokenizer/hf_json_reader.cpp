#include "tokenizer/hf_json_reader.h"

#include <utility>

namespace tinygpt {

namespace {

using json = nlohmann::json;

// nlohmann's SAX events turned into TokenizerJson. Outside the two tables it builds the DOM as
// json::parse would (a stack of open containers, the slot of the last key); inside them it fills
// the flat arrays, and skips what a table's entry nests (an error the loader reports anyway).
class TokenizerJsonHandler {
  public:
    // vocab_at_root: the document is a vocabulary itself (GPT-2's encoder.json), not a
    // tokenizer.json holding one at model.vocab.
    TokenizerJsonHandler(TokenizerJson& out, bool vocab_at_root)
        : out_(out), vocab_at_root_(vocab_at_root) {}

    bool null() { return scalar(json(nullptr)); }
    bool boolean(bool value) { return scalar(json(value)); }
    bool number_integer(json::number_integer_t value) { return scalar(json(value)); }
    bool number_unsigned(json::number_unsigned_t value) { return scalar(json(value)); }
    bool number_float(json::number_float_t value, const json::string_t&) {
        return scalar(json(value));
    }
    bool binary(json::binary_t& value) { return scalar(json(json::binary_t(std::move(value)))); }

    bool string(json::string_t& value) {
        if (skipped_ > 0) return true;
        switch (table_) {
            case Table::none:
                place(json(std::move(value)));
                return true;
            case Table::vocab:
                out_.vocab.push_back({std::move(key_), json(std::move(value))});
                return true;
            case Table::merges:
                if (in_pair_) {
                    if (pair_strings_ < 2) pair_[pair_strings_] = std::move(value);
                    ++pair_strings_;
                } else {
                    add_merge_text(value);
                }
                return true;
        }
        return true;
    }

    bool start_object(std::size_t) { return start(json::value_t::object); }
    bool start_array(std::size_t) { return start(json::value_t::array); }

    bool key(json::string_t& name) {
        if (skipped_ > 0) return true;
        if (table_ == Table::vocab) {
            key_ = std::move(name);
        } else {
            json& object = *open_.back();
            slot_ = &object[name];
            keys_.back() = std::move(name);
        }
        return true;
    }

    bool end_object() { return end(); }
    bool end_array() { return end(); }

    bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& error) {
        throw error;
    }

  private:
    enum class Table { none, vocab, merges };

    // Where the next value goes: the document's root, the open array, or the last key's slot.
    json* place(json value) {
        if (open_.empty()) {
            root_seen_ = true;
            out_.root = std::move(value);
            return &out_.root;
        }
        json& parent = *open_.back();
        if (parent.is_array()) {
            parent.push_back(std::move(value));
            return &parent.back();
        }
        *slot_ = std::move(value);
        return slot_;
    }

    bool scalar(json value) {
        if (skipped_ > 0) return true;
        switch (table_) {
            case Table::none:
                place(std::move(value));
                break;
            case Table::vocab:
                out_.vocab.push_back({std::move(key_), std::move(value)});
                break;
            case Table::merges:
                if (in_pair_)
                    pair_malformed_ = true, ++pair_strings_;
                else
                    add_malformed_merge(not_a_merge(value.dump()));
                break;
        }
        return true;
    }

    // True when the container about to open is root.model.<name>.
    bool opens_model_member(const char* name) const {
        return !vocab_at_root_ && open_.size() == 2 && open_[0] == &out_.root &&
               keys_[0] == "model" && open_[1]->is_object() && keys_[1] == name;
    }
    bool opens_vocab() const {
        return vocab_at_root_ ? open_.empty() && !root_seen_ : opens_model_member("vocab");
    }

    bool start(json::value_t type) {
        if (skipped_ > 0) {
            ++skipped_;
            return true;
        }
        if (table_ == Table::vocab) {  // an entry whose value is a container: not an id
            out_.vocab.push_back({std::move(key_), json(type)});
            skipped_ = 1;
            return true;
        }
        if (table_ == Table::merges) {
            if (type == json::value_t::array && !in_pair_) {
                in_pair_ = true;
                pair_strings_ = 0;
                pair_malformed_ = false;
            } else if (in_pair_) {
                pair_malformed_ = true;
                ++pair_strings_;
                skipped_ = 1;
            } else {
                add_malformed_merge(not_a_merge("an object"));
                skipped_ = 1;
            }
            return true;
        }
        if (type == json::value_t::object && opens_vocab()) {
            place(json(type));  // the DOM keeps an empty object: model.vocab is present
            table_ = Table::vocab;
            out_.vocab.clear();  // a repeated "vocab" key: the last one counts, as in a DOM
            return true;
        }
        if (type == json::value_t::array && opens_model_member("merges")) {
            place(json(type));
            table_ = Table::merges;
            out_.merges.clear();
            out_.malformed_merge.reset();
            return true;
        }
        open_.push_back(place(json(type)));
        keys_.emplace_back();
        return true;
    }

    bool end() {
        if (skipped_ > 0) {
            --skipped_;
            return true;
        }
        if (table_ == Table::merges && in_pair_) {
            in_pair_ = false;
            if (pair_malformed_ || pair_strings_ != 2) {
                add_malformed_merge(not_a_merge(
                    pair_malformed_ ? "an array with a value that is not a string"
                                    : "an array of " + std::to_string(pair_strings_) + " strings"));
            } else {
                const size_t left_length = pair_[0].size();
                add_merge(std::move(pair_[0].append(pair_[1])), left_length);
            }
            return true;
        }
        if (table_ != Table::none) {
            table_ = Table::none;
            return true;
        }
        open_.pop_back();
        keys_.pop_back();
        return true;
    }

    static std::string not_a_merge(const std::string& what) {
        return "expected \"a b\" or [\"a\", \"b\"], got " + what;
    }
    void add_merge(std::string merged, size_t left_length) {
        if (out_.malformed_merge) return;  // the loader stops at the first malformed merge
        out_.merges.push_back({std::move(merged), static_cast<uint32_t>(left_length)});
    }
    void add_malformed_merge(std::string what) {
        if (!out_.malformed_merge) out_.malformed_merge = std::move(what);
    }
    void add_merge_text(const std::string& text) {
        if (auto merge = TokenizerJson::Merge::from_text(text))
            add_merge(std::move(merge->merged), merge->left_length);
        else
            add_malformed_merge("\"" + text + "\" is not two tokens separated by one space");
    }

    TokenizerJson& out_;
    const bool vocab_at_root_;
    bool root_seen_ = false;
    std::vector<json*> open_;        // the DOM's open containers, outermost first
    std::vector<std::string> keys_;  // each open object's last key
    json* slot_ = nullptr;           // the value of the last key in the innermost object
    Table table_ = Table::none;
    std::string key_;       // inside model.vocab: the entry's spelling
    int skipped_ = 0;       // depth inside a container nested in a table's entry
    bool in_pair_ = false;  // inside a merge written as ["a", "b"]
    bool pair_malformed_ = false;
    int pair_strings_ = 0;
    std::string pair_[2];
};

TokenizerJson read_json(const std::string& text, bool vocab_at_root) {
    TokenizerJson out;
    TokenizerJsonHandler handler(out, vocab_at_root);
    // A pointer range, not the string: a parser instantiation of this file's own, which the
    // sanitized build runs at this file's -O1 rather than the linker's pick of a test file's
    // -O0 copy (Qwen3's load there 5.0 -> 3.6 s; the same speed in release builds).
    json::sax_parse(text.data(), text.data() + text.size(), &handler);
    return out;
}

}  // namespace

std::optional<TokenizerJson::Merge> TokenizerJson::Merge::from_text(std::string_view text) {
    const size_t space = text.find(' ');
    if (space == std::string_view::npos || text.find(' ', space + 1) != std::string_view::npos)
        return std::nullopt;
    return Merge{std::string(text.substr(0, space)).append(text.substr(space + 1)),
                 static_cast<uint32_t>(space)};
}

TokenizerJson read_tokenizer_json(const std::string& text) {
    return read_json(text, false);
}

TokenizerJson read_vocab_json(const std::string& text) {
    return read_json(text, true);
}

}  // namespace tinygpt
