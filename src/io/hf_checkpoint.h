// A Hugging Face checkpoint directory: either one `model.safetensors`, or the shards that
// `model.safetensors.index.json` lists in its weight_map. Everything is validated on open (each
// shard as in io/safetensors.h, and the index against the shards' contents), so that a tensor is
// found in exactly one place or the checkpoint is refused.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "io/safetensors.h"

namespace tinygpt::io {

class HfCheckpoint {
  public:
    // Picks the index if present, else model.safetensors. Throws tinygpt::Error whose message
    // starts with the path of the directory or of the file at fault.
    static HfCheckpoint open_dir(const std::string& dir);

    const std::string& dir() const { return dir_; }
    bool sharded() const { return sharded_; }
    const std::vector<SafetensorsFile>& files() const { return files_; }

    const SafetensorsTensor* find(const std::string& name) const;  // nullptr if absent
    std::vector<std::string> names() const;  // every tensor (unsupported dtypes too), sorted
    // The tensor, or Error "<dir>: tensor 'X' ..." if it is missing, has another shape (the
    // message gives both) or a dtype tinygpt does not load.
    const SafetensorsTensor& require(const std::string& name,
                                     const std::vector<int64_t>& shape) const;
    uint64_t total_bytes() const;  // data bytes of the loadable tensors

  private:
    std::string dir_;
    bool sharded_ = false;
    std::vector<SafetensorsFile> files_;
    // Point into files_' tensor lists, whose storage moves with them.
    std::map<std::string, const SafetensorsTensor*> tensors_;
    std::map<std::string, std::string> unsupported_;  // name → dtype
};

}  // namespace tinygpt::io
