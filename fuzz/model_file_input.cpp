#include "model_file_input.h"

#include <cstring>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "fuzz_support.h"
#include "io/format_internal.h"
#include "util/error.h"

namespace tinygpt::fuzz {

void load_model_file_input(const uint8_t* data, size_t size) {
    const std::string path =
        write_temp_file("model.tinygpt", {reinterpret_cast<const char*>(data), size});
    try {
        const OpenedModel model =
            open_model(path, ReadOptions{.optimizer = true}, NonFinite::Report);
        run_model(model);
    } catch (const Error&) {
        // A clean refusal: what every hostile file must end in.
    }
}

void repair_v3_checksums(uint8_t* data, size_t size) {
    constexpr size_t kPreamble = 12, kChecksumBytes = 8;
    if (size < kPreamble + kChecksumBytes || std::memcmp(data, "TGPT", 4) != 0) return;
    uint32_t version = 0, header_bytes = 0;
    std::memcpy(&version, data + 4, 4);
    std::memcpy(&header_bytes, data + 8, 4);
    if (version != 3 || header_bytes > size - kPreamble - kChecksumBytes) return;
    char* header_text = reinterpret_cast<char*>(data + kPreamble);
    const nlohmann::json header =
        nlohmann::json::parse(header_text, header_text + header_bytes, nullptr, false);
    if (header.is_object() && header.contains("sections") && header["sections"].is_array()) {
        // Sections are written in array order, so each old checksum is searched after the last.
        std::string_view text(header_text, header_bytes);
        size_t search_from = 0;
        for (const nlohmann::json& section : header["sections"]) {
            if (!section.is_object()) continue;
            const auto offset = section.find("offset"), bytes = section.find("bytes"),
                       checksum = section.find("checksum");
            if (offset == section.end() || bytes == section.end() || checksum == section.end() ||
                !offset->is_number_unsigned() || !bytes->is_number_unsigned() ||
                !checksum->is_string())
                continue;
            const uint64_t begin = offset->get<uint64_t>(), length = bytes->get<uint64_t>();
            const std::string old_hex = checksum->get<std::string>();
            if (begin > size || length > size - begin || old_hex.size() != 16) continue;
            const size_t at = text.find(old_hex, search_from);
            if (at == std::string_view::npos) continue;
            const std::string new_hex = io::hex64(io::checksum64(data + begin, length));
            std::memcpy(header_text + at, new_hex.data(), new_hex.size());
            search_from = at + new_hex.size();
        }
    }
    const uint64_t header_checksum = io::checksum64(data, kPreamble + header_bytes);
    std::memcpy(data + kPreamble + header_bytes, &header_checksum, kChecksumBytes);
}

}  // namespace tinygpt::fuzz
