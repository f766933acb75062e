#include "tokenizer/pre_tokenizer.h"

#include <algorithm>
#include <utility>

namespace tinygpt {

namespace {

// The offset of the character after the one at `i`.
size_t next_char(std::string_view text, size_t i) {
    ++i;
    while (i < text.size() && (static_cast<unsigned char>(text[i]) & 0xC0) == 0x80) ++i;
    return i;
}

struct Segment {
    size_t begin, end;
    bool is_match;
};

// The text cut into alternating non-matches and matches of the step's pattern (HF's
// find_matches), with `invert` applied.
std::vector<Segment> find_segments(const PreTokenizerStep& step, std::string_view text) {
    std::vector<Segment> out;
    size_t prev = 0;
    auto add_match = [&](size_t b, size_t e) {
        if (prev != b) out.push_back({prev, b, false});
        out.push_back({b, e, true});
        prev = e;
    };
    if (step.regex) {
        size_t from = 0, b = 0, e = 0;
        while (from <= text.size() && step.regex->find(text, from, b, e)) {
            add_match(b, e);
            if (e == b) {
                // An empty match: step over one character so the search advances.
                if (e >= text.size()) break;
                from = next_char(text, e);
            } else {
                from = e;
            }
        }
    } else {
        for (size_t at = text.find(step.literal); at != std::string_view::npos;
             at = text.find(step.literal, prev))
            add_match(at, at + step.literal.size());
    }
    if (prev < text.size()) out.push_back({prev, text.size(), false});
    if (step.invert)
        for (auto& s : out) s.is_match = !s.is_match;
    return out;
}

// HF's SplitDelimiterBehavior applied to the segments; returns the pieces to keep.
std::vector<std::pair<size_t, size_t>> apply_behavior(const std::vector<Segment>& segments,
                                                      SplitBehavior behavior) {
    std::vector<std::pair<size_t, size_t>> out;
    bool previous_match = false;
    switch (behavior) {
        case SplitBehavior::Removed:
            for (const auto& s : segments)
                if (!s.is_match) out.emplace_back(s.begin, s.end);
            break;
        case SplitBehavior::Isolated:
            for (const auto& s : segments) out.emplace_back(s.begin, s.end);
            break;
        case SplitBehavior::MergedWithPrevious:
            for (const auto& s : segments) {
                if (s.is_match && !previous_match && !out.empty())
                    out.back().second = s.end;
                else
                    out.emplace_back(s.begin, s.end);
                previous_match = s.is_match;
            }
            break;
        case SplitBehavior::MergedWithNext:
            for (auto it = segments.rbegin(); it != segments.rend(); ++it) {
                if (it->is_match && !previous_match && !out.empty())
                    out.back().first = it->begin;
                else
                    out.emplace_back(it->begin, it->end);
                previous_match = it->is_match;
            }
            std::reverse(out.begin(), out.end());
            break;
        case SplitBehavior::Contiguous:
            for (const auto& s : segments) {
                if (s.is_match == previous_match && !out.empty())
                    out.back().second = s.end;
                else
                    out.emplace_back(s.begin, s.end);
                previous_match = s.is_match;
            }
            break;
    }
    return out;
}

}  // namespace

void PreTokenizer::add(PreTokenizerStep step) {
    steps_.push_back(std::move(step));
}

void PreTokenizer::run(std::string_view text, PieceSink& sink) const {
    if (text.empty()) return;
    run_from(0, text, sink);
}

void PreTokenizer::run_from(size_t index, std::string_view text, PieceSink& sink) const {
    if (text.empty()) return;
    if (index == steps_.size()) {
        sink.piece(text);
        return;
    }
    const PreTokenizerStep& step = steps_[index];
    // HF's ByteLevel prepends the space to every piece it receives, not only to the text's start.
    if (step.kind == PreTokenizerStep::Kind::ByteLevel && step.add_prefix_space &&
        text.front() != ' ') {
        std::string prefixed;
        prefixed.reserve(text.size() + 1);
        prefixed += ' ';
        prefixed += text;
        split_step(index, prefixed, sink);
        return;
    }
    split_step(index, text, sink);
}

void PreTokenizer::split_step(size_t index, std::string_view text, PieceSink& sink) const {
    const PreTokenizerStep& step = steps_[index];
    if (!step.regex && step.kind == PreTokenizerStep::Kind::ByteLevel) {
        run_from(index + 1, text, sink);
        return;
    }
    // Isolated without invert (the common case) streams the matches without building a list.
    if (step.behavior == SplitBehavior::Isolated && !step.invert && step.regex) {
        size_t prev = 0, from = 0, b = 0, e = 0;
        while (from <= text.size() && step.regex->find(text, from, b, e)) {
            if (b > prev) run_from(index + 1, text.substr(prev, b - prev), sink);
            if (e > b) run_from(index + 1, text.substr(b, e - b), sink);
            prev = e;
            if (e == b) {
                if (e >= text.size()) break;
                from = next_char(text, e);
            } else {
                from = e;
            }
        }
        if (prev < text.size()) run_from(index + 1, text.substr(prev), sink);
        return;
    }
    for (const auto& [b, e] : apply_behavior(find_segments(step, text), step.behavior))
        run_from(index + 1, text.substr(b, e - b), sink);
}

}  // namespace tinygpt
