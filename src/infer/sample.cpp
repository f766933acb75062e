#include "infer/sample.h"

namespace tinygpt {

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
