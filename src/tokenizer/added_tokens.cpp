#include "tokenizer/added_tokens.h"

#include <algorithm>

#include "tokenizer/regex.h"
#include "tokenizer/utf8.h"

namespace tinygpt {

void AddedTokenMatcher::add(std::string_view content, int id, bool lstrip, bool rstrip) {
    if (!root_init_) {
        root_child_.fill(-1);
        root_init_ = true;
    }
    if (content.empty()) return;
    int32_t node = 0;
    for (unsigned char c : content) {
        auto& kids = nodes_[node].children;
        auto it = std::lower_bound(kids.begin(), kids.end(), c,
                                   [](const auto& kid, uint8_t b) { return kid.first < b; });
        if (it != kids.end() && it->first == c) {
            node = it->second;
            continue;
        }
        const auto child = static_cast<int32_t>(nodes_.size());
        kids.insert(it, {c, child});
        if (node == 0) root_child_[c] = child;
        nodes_.push_back(Node{});
        node = child;
    }
    nodes_[node].id = id;
    nodes_[node].lstrip = lstrip;
    nodes_[node].rstrip = rstrip;
}

bool AddedTokenMatcher::longest_at(std::string_view text, size_t at, size_t& end, int& id,
                                   bool& lstrip, bool& rstrip) const {
    if (!root_init_) return false;
    int32_t node = root_child_[static_cast<unsigned char>(text[at])];
    bool found = false;
    for (size_t j = at + 1; node >= 0; ++j) {
        const Node& n = nodes_[node];
        if (n.id >= 0) {
            found = true;
            end = j;
            id = n.id;
            lstrip = n.lstrip;
            rstrip = n.rstrip;
        }
        if (j >= text.size()) break;
        const auto c = static_cast<unsigned char>(text[j]);
        const auto it = std::lower_bound(n.children.begin(), n.children.end(), c,
                                         [](const auto& kid, uint8_t b) { return kid.first < b; });
        node = (it != n.children.end() && it->first == c) ? it->second : -1;
    }
    return found;
}

size_t AddedTokenMatcher::skip_white_space_back(std::string_view text, size_t at, size_t floor) {
    while (at > floor) {
        size_t start = at - 1;
        while (start > floor && (static_cast<unsigned char>(text[start]) & 0xC0) == 0x80) --start;
        size_t i = start;
        if (!is_white_space(utf8::next(text, i))) break;
        at = start;
    }
    return at;
}

size_t AddedTokenMatcher::skip_white_space_forward(std::string_view text, size_t at) {
    while (at < text.size()) {
        size_t i = at;
        if (!is_white_space(utf8::next(text, i))) break;
        at = i;
    }
    return at;
}

}  // namespace tinygpt
