#include "infer/sample.h"

#include <algorithm>
#include <vector>

namespace tinygpt {

std::string generate_greedy(GptModel& model, const std::string& prompt, int new_tokens) {
    const int ctx = model.config().ctx, V = model.config().vocab;
    std::vector<int> tokens;
    for (unsigned char c : prompt) tokens.push_back(c);
    if (tokens.empty()) tokens.push_back('\n');
    std::string out;
    for (int i = 0; i < new_tokens; ++i) {
        const int T = std::min<int>(static_cast<int>(tokens.size()), ctx);
        const int* window = tokens.data() + tokens.size() - T;
        model.forward(window, nullptr, 1, T);
        const float* last = model.logits() + static_cast<size_t>(T - 1) * V;
        const int next = static_cast<int>(std::max_element(last, last + V) - last);
        tokens.push_back(next);
        out.push_back(static_cast<char>(next));
    }
    return out;
}

std::string printable(const std::string& text) {
    std::string out;
    for (unsigned char c : text) {
        if (c == '\n') out += "\u23CE";
        else if (c < 32 || c == 127) out += '.';
        else out += static_cast<char>(c);
    }
    return out;
}

}  // namespace tinygpt
