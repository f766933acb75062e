#include "util/byte_size.h"

#include <cctype>
#include <cmath>
#include <cstdio>
#include <string_view>

#include "util/error.h"

namespace tinygpt {

namespace {

constexpr double kMaxSize = 4611686018427387904.0;  // 2^62: fits int64 with room to add

bool equals_ignoring_case(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i)
        if (std::tolower(static_cast<unsigned char>(a[i])) !=
            std::tolower(static_cast<unsigned char>(b[i])))
            return false;
    return true;
}

// The multiplier a unit stands for, or 0 when it is not one.
double unit_multiplier(std::string_view unit) {
    if (unit.empty() || equals_ignoring_case(unit, "b")) return 1.0;
    const char prefixes[] = "kmgt";
    for (int i = 0; i < 4; ++i) {
        const char p = prefixes[i];
        const std::string one(1, p);
        if (equals_ignoring_case(unit, one) || equals_ignoring_case(unit, one + "b") ||
            equals_ignoring_case(unit, one + "ib"))
            return std::ldexp(1.0, 10 * (i + 1));
    }
    return 0.0;
}

}  // namespace

uint64_t parse_byte_size(const std::string& text) {
    const std::string expected =
        "a size such as 8G, 512M, 1.5GiB or a number of bytes (got '" + text + "')";
    size_t i = 0;
    while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) ++i;
    const size_t integer_digits = i;
    size_t fraction_digits = 0;
    if (i < text.size() && text[i] == '.') {
        ++i;
        while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i])))
            ++i, ++fraction_digits;
    }
    require(integer_digits + fraction_digits > 0 && integer_digits <= 20, expected);
    const double multiplier = unit_multiplier(std::string_view(text).substr(i));
    require(multiplier > 0.0, expected);
    const double value = std::stod(text.substr(0, i)) * multiplier;
    require(value >= 1.0, "the size must be at least 1 byte (got '" + text + "')");
    require(value <= kMaxSize, "the size '" + text + "' is too large (at most 4194304T)");
    return static_cast<uint64_t>(value);
}

std::string format_bytes(double bytes) {
    static const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int unit = 0;
    while (unit < 4 && bytes >= 1024.0) bytes /= 1024.0, ++unit;
    char buf[48];
    if (unit == 0)
        std::snprintf(buf, sizeof buf, "%.0f B", bytes);
    else if (bytes < 10.0)
        std::snprintf(buf, sizeof buf, "%.2f %s", bytes, kUnits[unit]);
    else if (bytes < 100.0)
        std::snprintf(buf, sizeof buf, "%.1f %s", bytes, kUnits[unit]);
    else if (bytes < 1e6)
        std::snprintf(buf, sizeof buf, "%.0f %s", bytes, kUnits[unit]);
    else
        std::snprintf(buf, sizeof buf, "%.2g %s", bytes, kUnits[unit]);
    return buf;
}

}  // namespace tinygpt
