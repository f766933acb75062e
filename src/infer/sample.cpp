#include "infer/sample.h"

#include "infer/generate.h"

namespace tinygpt {

std::string generate_greedy(const Model& model, const std::string& prompt, int new_tokens) {
    GenerateOptions options;
    options.max_new_tokens = new_tokens;
    options.sampling.temperature = 0.0f;
    std::string out;
    generate(model.config(), model.weights(), bytes_to_tokens(prompt.empty() ? "\n" : prompt),
             options, [&](int token) { out.push_back(static_cast<char>(token)); });
    return out;
}

std::string printable(const std::string& text) {
    std::string out;
    for (unsigned char c : text) {
        if (c == '\n')
            out += "\u23CE";
        else if (c < 32 || c == 127)
            out += '.';
        else
            out += static_cast<char>(c);
    }
    return out;
}

}  // namespace tinygpt
