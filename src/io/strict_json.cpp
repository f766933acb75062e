#include "io/strict_json.h"

#include <set>
#include <vector>

#include "util/error.h"

namespace tinygpt::io {

namespace {

constexpr size_t kMaxDepth = 64;

// One open container while parsing: the keys an object has seen so far (arrays have none) and
// the key under which it sits in its parent, for the error message.
struct OpenContainer {
    bool is_object = false;
    std::string label;
    std::string last_key;
    std::set<std::string> keys;
};

std::string quoted_excerpt(const std::string& s) {
    return "'" + (s.size() > 60 ? s.substr(0, 57) + "..." : s) + "'";
}

}  // namespace

nlohmann::json parse_json_strict(const uint8_t* text, size_t bytes, const std::string& what) {
    using nlohmann::json;
    std::vector<OpenContainer> open;
    auto on_event = [&](int /*depth*/, json::parse_event_t event, json& parsed) {
        switch (event) {
            case json::parse_event_t::object_start:
            case json::parse_event_t::array_start: {
                if (open.size() >= kMaxDepth)
                    throw Error(what + " JSON is nested more than " + std::to_string(kMaxDepth) +
                                " levels deep");
                OpenContainer c;
                c.is_object = event == json::parse_event_t::object_start;
                if (!open.empty()) c.label = open.back().last_key;
                open.push_back(std::move(c));
                break;
            }
            case json::parse_event_t::key: {
                OpenContainer& top = open.back();
                top.last_key = parsed.get<std::string>();
                if (!top.keys.insert(top.last_key).second)
                    throw Error(what + " JSON has the key " + quoted_excerpt(top.last_key) +
                                " twice" +
                                (open.size() == 1 ? std::string(" at the top level")
                                                  : " (in " + quoted_excerpt(top.label) + ")"));
                break;
            }
            case json::parse_event_t::object_end:
            case json::parse_event_t::array_end:
                open.pop_back();
                break;
            case json::parse_event_t::value:
                break;
        }
        return true;
    };
    try {
        return json::parse(text, text + bytes, on_event);
    } catch (const json::parse_error& e) {
        throw Error(what + " is not valid JSON: " + e.what());
    }
}

}  // namespace tinygpt::io
