// HfCheckpoint: one safetensors file or an index with shards (docs/FORMAT.md, "Hugging Face
// safetensors"). The index is trusted for nothing: a tensor that the index and the shards do not
// agree on is an error, because loading "some" copy of it would be a guess.
#include "io/hf_checkpoint.h"

#include <sys/stat.h>

#include <algorithm>
#include <new>
#include <set>

#include "io/format_internal.h"
#include "io/mapped_file.h"
#include "io/strict_json.h"
#include "util/error.h"
#include "util/format.h"

namespace tinygpt::io {

namespace {

constexpr const char* kSingleFile = "model.safetensors";
constexpr const char* kIndexFile = "model.safetensors.index.json";
constexpr uint64_t kMaxIndexBytes = 100'000'000;

std::string join(const std::string& dir, const std::string& name) {
    if (dir.empty()) return name;
    return dir.back() == '/' ? dir + name : dir + "/" + name;
}

bool exists(const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0;
}

// A shard name from the index must be a plain file name in the checkpoint directory.
bool plain_file_name(const std::string& name) {
    return !name.empty() && name != "." && name != ".." &&
           name.find_first_of(std::string("/\\\0", 3)) == std::string::npos;
}

// weight_map of the index: tensor name → shard file name, validated.
std::map<std::string, std::string> read_weight_map(const std::string& index_path) {
    try {
        const MappedFile file(index_path);
        if (file.size() > kMaxIndexBytes)
            throw Error("the index is " + std::to_string(file.size()) + " bytes, more than the " +
                        std::to_string(kMaxIndexBytes) + "-byte limit");
        const nlohmann::json index =
            parse_json_strict(file.data(), static_cast<size_t>(file.size()), "index");
        if (!index.is_object())
            throw Error("the index is not a JSON object (got " + std::string(index.type_name()) +
                        ")");
        if (auto meta = index.find("metadata"); meta != index.end() && !meta->is_object())
            throw Error("'metadata' must be an object (got " + std::string(meta->type_name()) +
                        ")");
        auto map = index.find("weight_map");
        if (map == index.end()) throw Error("'weight_map' is missing");
        if (!map->is_object())
            throw Error("'weight_map' must be an object of tensor name → shard file (got " +
                        std::string(map->type_name()) + ")");
        if (map->empty()) throw Error("'weight_map' lists no tensors");
        std::map<std::string, std::string> out;
        for (auto it = map->begin(); it != map->end(); ++it) {
            if (!it.value().is_string())
                throw Error("weight_map entry for tensor " + in_quotes(it.key()) +
                            " must be a shard file name (got " +
                            std::string(it.value().type_name()) + ")");
            const std::string& shard = it.value().get_ref<const std::string&>();
            if (!plain_file_name(shard))
                throw Error("weight_map puts tensor " + in_quotes(it.key()) + " in " +
                            in_quotes(shard) +
                            ", which is not a plain file name in the checkpoint directory");
            out.emplace(it.key(), shard);
        }
        return out;
    } catch (const std::bad_alloc&) {
        throw Error(index_path + ": out of memory while reading the index");
    } catch (const std::exception& e) {
        throw Error(index_path + ": " + e.what());
    }
}

}  // namespace

HfCheckpoint HfCheckpoint::open_dir(const std::string& dir) {
    struct stat st {};
    if (::stat(dir.c_str(), &st) != 0) throw Error(dir + ": no such checkpoint directory");
    if (!S_ISDIR(st.st_mode))
        throw Error(dir + ": is not a directory (a Hugging Face checkpoint is a directory with " +
                    kSingleFile + " or " + kIndexFile + ")");
    HfCheckpoint ckpt;
    ckpt.dir_ = dir;
    const std::string index_path = join(dir, kIndexFile);
    std::map<std::string, std::string> weight_map;  // empty for a single file
    if (exists(index_path)) {
        ckpt.sharded_ = true;
        weight_map = read_weight_map(index_path);
        std::map<std::string, std::string> example;  // shard → one tensor listed for it
        for (const auto& [name, shard] : weight_map) example.emplace(shard, name);
        ckpt.files_.reserve(example.size());
        for (const auto& [shard, tensor] : example) {
            const std::string shard_path = join(dir, shard);
            if (!exists(shard_path))
                throw Error(index_path + ": shard " + in_quotes(shard) + " (listed for tensor " +
                            in_quotes(tensor) + ") is missing");
            ckpt.files_.push_back(SafetensorsFile::open(shard_path));
        }
    } else if (exists(join(dir, kSingleFile))) {
        ckpt.files_.push_back(SafetensorsFile::open(join(dir, kSingleFile)));
    } else {
        throw Error(dir + ": neither " + kSingleFile + " nor " + kIndexFile + " is there");
    }

    // Every tensor in exactly one file, and (sharded) in the file the index names.
    std::map<std::string, const SafetensorsFile*> found_in;
    auto place = [&](const std::string& name, const SafetensorsFile& file) {
        auto [it, fresh] = found_in.emplace(name, &file);
        if (!fresh)
            throw Error(dir + ": tensor " + in_quotes(name) + " is in two shards, " +
                        it->second->path() + " and " + file.path());
        if (!ckpt.sharded_) return;
        auto listed = weight_map.find(name);
        if (listed == weight_map.end())
            throw Error(index_path + ": tensor " + in_quotes(name) + " is in shard " + file.path() +
                        " but not in the index's weight_map (refusing an ambiguous checkpoint)");
        if (join(dir, listed->second) != file.path())
            throw Error(index_path + ": the index puts tensor " + in_quotes(name) + " in " +
                        in_quotes(listed->second) + " but it is in " + file.path());
    };
    for (const SafetensorsFile& file : ckpt.files_) {
        for (const SafetensorsTensor& t : file.tensors()) {
            place(t.name, file);
            ckpt.tensors_.emplace(t.name, &t);
        }
        for (const auto& [name, dtype] : file.unsupported()) {
            place(name, file);
            ckpt.unsupported_.emplace(name, dtype);
        }
    }
    for (const auto& [name, shard] : weight_map)
        if (found_in.count(name) == 0)
            throw Error(index_path + ": tensor " + in_quotes(name) + " is listed for shard " +
                        in_quotes(shard) + " but that shard has no such tensor");
    return ckpt;
}

const SafetensorsTensor* HfCheckpoint::find(const std::string& name) const {
    auto it = tensors_.find(name);
    return it == tensors_.end() ? nullptr : it->second;
}

std::vector<std::string> HfCheckpoint::names() const {
    std::vector<std::string> out;
    out.reserve(tensors_.size() + unsupported_.size());
    for (const auto& entry : tensors_) out.push_back(entry.first);
    for (const auto& entry : unsupported_) out.push_back(entry.first);
    std::sort(out.begin(), out.end());
    return out;
}

const SafetensorsTensor& HfCheckpoint::require(const std::string& name,
                                               const std::vector<int64_t>& shape) const {
    const SafetensorsTensor* t = find(name);
    if (t == nullptr) {
        auto odd = unsupported_.find(name);
        if (odd != unsupported_.end())
            throw Error(dir_ + ": tensor " + in_quotes(name) + " has dtype " + odd->second +
                        ", which tinygpt cannot load (it loads F32, BF16 and F16)");
        throw Error(dir_ + ": tensor " + in_quotes(name) + " is missing (the checkpoint has " +
                    std::to_string(tensors_.size() + unsupported_.size()) + " tensors)");
    }
    if (t->shape != shape)
        throw Error(dir_ + ": tensor " + in_quotes(name) + " has shape " + shape_string(t->shape) +
                    ", expected " + shape_string(shape));
    return *t;
}

uint64_t HfCheckpoint::total_bytes() const {
    uint64_t total = 0;
    for (const auto& entry : tensors_) total += entry.second->bytes;
    return total;
}

}  // namespace tinygpt::io
