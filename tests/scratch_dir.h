// A fresh directory under the system's temporary directory, removed with everything in it when
// the object goes (the tests' files: saved models, corpora, caches).
#pragma once
#include <stdlib.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <string>

namespace tinygpt::test {

class ScratchDir {
  public:
    // `tag` names the directory (tinygpt-TAG-XXXXXX), so that a leftover says which test made it.
    explicit ScratchDir(const std::string& tag = "test") {
        std::string tmpl =
            (std::filesystem::temp_directory_path() / ("tinygpt-" + tag + "-XXXXXX")).string();
        if (mkdtemp(tmpl.data()) == nullptr)
            throw std::runtime_error("mkdtemp " + tmpl + ": " + std::strerror(errno));
        path_ = tmpl;
    }
    ~ScratchDir() {
        std::error_code ec;  // a test may have taken its own permissions away
        std::filesystem::permissions(path_, std::filesystem::perms::owner_all,
                                     std::filesystem::perm_options::add, ec);
        std::filesystem::remove_all(path_, ec);
    }
    ScratchDir(const ScratchDir&) = delete;
    ScratchDir& operator=(const ScratchDir&) = delete;

    std::string file(const std::string& name) const { return (path_ / name).string(); }
    const std::filesystem::path& path() const { return path_; }

  private:
    std::filesystem::path path_;
};

}  // namespace tinygpt::test
