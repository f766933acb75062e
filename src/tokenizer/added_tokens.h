// Added tokens (special or not) are found in the text before normalisation and pre-tokenization,
// as HF does: leftmost match first, the longest one there (aho-corasick LeftmostLongest), with
// lstrip / rstrip swallowing the White_Space next to the token.
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace tinygpt {

struct AddedToken {
    int id = -1;
    std::string content;
    bool special = false;
    bool lstrip = false;
    bool rstrip = false;
    bool normalized = false;
    bool single_word = false;  // refused at load: not implemented
};

class AddedTokenMatcher {
  public:
    void add(std::string_view content, int id, bool lstrip, bool rstrip);
    bool empty() const { return nodes_.size() <= 1; }

    // Calls text_fn(std::string_view) for the text between tokens (non-empty) and token_fn(id)
    // for each token, in order.
    template <class TextFn, class TokenFn>
    void split(std::string_view text, TextFn&& text_fn, TokenFn&& token_fn) const {
        size_t emitted = 0;  // text before this offset has been handed out
        size_t i = 0;
        while (i < text.size()) {
            size_t begin = i, end = 0;
            int id = -1;
            bool lstrip = false, rstrip = false;
            if (!longest_at(text, i, end, id, lstrip, rstrip)) {
                ++i;
                continue;
            }
            if (lstrip) begin = skip_white_space_back(text, begin, emitted);
            if (rstrip) end = skip_white_space_forward(text, end);
            if (begin > emitted) text_fn(text.substr(emitted, begin - emitted));
            token_fn(id);
            emitted = i = end;
        }
        if (emitted < text.size()) text_fn(text.substr(emitted));
    }

  private:
    struct Node {
        std::vector<std::pair<uint8_t, int32_t>> children;  // sorted by byte
        int32_t id = -1;
        bool lstrip = false, rstrip = false;
    };
    bool longest_at(std::string_view text, size_t at, size_t& end, int& id, bool& lstrip,
                    bool& rstrip) const;
    static size_t skip_white_space_back(std::string_view text, size_t at, size_t floor);
    static size_t skip_white_space_forward(std::string_view text, size_t at);
    std::vector<Node> nodes_{Node{}};
    std::array<int32_t, 256> root_child_{};  // fast reject: most bytes start no token
    bool root_init_ = false;
};

}  // namespace tinygpt
