// A strict well-formedness check for the HTML and SVG that `tinygpt experts` writes: every tag
// closed in order (or self-closed), attribute values quoted, text free of raw '<', and every '&'
// one of the entities the writers use. What escaping mistakes break (a token "</svg>" or "a<b"
// left raw) shows up here as an unbalanced or unknown tag.
#pragma once
#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace tinygpt::test {

// "" if `doc` is well formed, else what is wrong and where.
inline std::string markup_problem(const std::string& doc) {
    std::vector<std::string> open;
    auto where = [&](size_t i) { return " at offset " + std::to_string(i); };
    for (size_t i = 0; i < doc.size();) {
        if (doc[i] == '&') {
            bool known = false;
            for (const char* entity : {"&amp;", "&lt;", "&gt;", "&quot;", "&#39;"})
                known = known || doc.compare(i, std::string(entity).size(), entity) == 0;
            if (!known) return "a bare '&'" + where(i);
            ++i;
            continue;
        }
        if (doc[i] != '<') {
            ++i;
            continue;
        }
        if (doc.compare(i, 2, "<!") == 0 || doc.compare(i, 2, "<?") == 0) {  // doctype, xml decl
            const size_t end = doc.find('>', i);
            if (end == std::string::npos) return "an unclosed declaration" + where(i);
            i = end + 1;
            continue;
        }
        const bool closing = doc.compare(i, 2, "</") == 0;
        size_t j = i + (closing ? 2 : 1);
        const size_t name_start = j;
        while (j < doc.size() &&
               (std::isalnum(static_cast<unsigned char>(doc[j])) || doc[j] == '-'))
            ++j;
        const std::string name = doc.substr(name_start, j - name_start);
        if (name.empty()) return "a '<' that starts no tag" + where(i);
        char quote = 0;
        for (; j < doc.size(); ++j) {  // to the tag's '>', skipping quoted values
            if (quote) {
                if (doc[j] == quote) quote = 0;
                if (doc[j] == '<') return "a '<' inside an attribute value" + where(j);
            } else if (doc[j] == '"' || doc[j] == '\'') {
                quote = doc[j];
            } else if (doc[j] == '>') {
                break;
            }
        }
        if (j >= doc.size()) return "an unclosed tag <" + name + where(i);
        const bool self_closed = doc[j - 1] == '/';
        if (closing) {
            if (open.empty() || open.back() != name)
                return "</" + name + "> closes " +
                       (open.empty() ? "nothing" : "<" + open.back() + ">") + where(i);
            open.pop_back();
        } else if (!self_closed && name != "meta") {  // meta: HTML's one void element here
            open.push_back(name);
        }
        i = j + 1;
    }
    if (!open.empty()) return "<" + open.back() + "> is never closed";
    return "";
}

// Occurrences of `needle` in `haystack`.
inline size_t count_of(const std::string& haystack, const std::string& needle) {
    size_t n = 0;
    for (size_t i = haystack.find(needle); i != std::string::npos;
         i = haystack.find(needle, i + needle.size()))
        ++n;
    return n;
}

// A page or image that opens with no network and no other file: nothing it could load.
inline void expect_self_contained(const std::string& html) {
    for (const char* reference : {"http", "src=", "href=", "url(", "@import", "<script", "<link"})
        EXPECT_EQ(html.find(reference), std::string::npos) << reference;
}

}  // namespace tinygpt::test
