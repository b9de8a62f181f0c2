// Helpers shared by the src/image unit tests: a temp directory removed at scope exit.
#pragma once

#include <stdlib.h>

#include <string>

#include "common/fs.hpp"

namespace berth::image::testing {

class TempDir {
public:
    explicit TempDir(const char* what = "image") {
        std::string tmpl = std::string("/tmp/berth-") + what + "-XXXXXX";
        if (::mkdtemp(tmpl.data()) != nullptr) path_ = tmpl;
    }
    ~TempDir() {
        if (!path_.empty()) (void)remove_all(path_);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    const std::string& path() const { return path_; }
    bool ok() const { return !path_.empty(); }

private:
    std::string path_;
};

}  // namespace berth::image::testing
