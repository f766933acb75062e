// Reader of the "TGTD" tensor archives that tools/torch_reference.py writes (format in
// tools/README.md): named float32 / int32 tensors, used to compare against PyTorch.
#pragma once
#include <cstdint>
#include <cstring>
#include <fstream>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace tinygpt::test {

struct ArchiveTensor {
    std::vector<int64_t> shape;
    std::vector<float> f32;
    std::vector<int32_t> i32;
};

inline std::map<std::string, ArchiveTensor> read_tensor_archive(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error("cannot open " + path);
    auto u32 = [&] {
        uint32_t v = 0;
        in.read(reinterpret_cast<char*>(&v), 4);
        return v;
    };
    char magic[4];
    in.read(magic, 4);
    if (std::memcmp(magic, "TGTD", 4) != 0 || u32() != 1)
        throw std::runtime_error(path + ": not a TGTD v1 archive");
    const uint32_t count = u32();
    std::map<std::string, ArchiveTensor> out;
    for (uint32_t i = 0; i < count && in; ++i) {
        std::string name(u32(), '\0');
        in.read(name.data(), static_cast<std::streamsize>(name.size()));
        const uint32_t dtype = u32(), ndim = u32();
        ArchiveTensor t;
        size_t n = 1;
        for (uint32_t d = 0; d < ndim; ++d) {
            int64_t dim = 0;
            in.read(reinterpret_cast<char*>(&dim), 8);
            t.shape.push_back(dim);
            n *= static_cast<size_t>(dim);
        }
        if (dtype == 0) {
            t.f32.resize(n);
            in.read(reinterpret_cast<char*>(t.f32.data()), static_cast<std::streamsize>(4 * n));
        } else {
            t.i32.resize(n);
            in.read(reinterpret_cast<char*>(t.i32.data()), static_cast<std::streamsize>(4 * n));
        }
        out[name] = std::move(t);
    }
    if (!in) throw std::runtime_error(path + ": truncated");
    return out;
}

}  // namespace tinygpt::test
