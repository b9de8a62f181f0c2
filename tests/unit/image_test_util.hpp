// Helpers shared by the src/image and src/store unit tests: a temp directory removed at scope exit, file contents
// for assertions, and a mount undone at scope exit.
#pragma once

#include <stdlib.h>
#include <sys/mount.h>

#include <fstream>
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

// The file's contents, or "<error>" (an assertion then shows what went wrong instead of an empty string).
inline std::string read_or(const std::string& path) {
    auto r = read_file(path);
    return r ? *r : "<" + r.error().message() + ">";
}

inline bool is_mounted(const std::string& target) {
    std::ifstream mi("/proc/self/mountinfo");
    std::string line;
    while (std::getline(mi, line))
        if (line.find(" " + target + " ") != std::string::npos) return true;
    return false;
}

// Unmounts (lazily) at scope exit unless the test already did, so a failed assertion leaves no mount behind.
struct MountGuard {
    std::string target;
    ~MountGuard() {
        if (!target.empty() && is_mounted(target)) ::umount2(target.c_str(), MNT_DETACH);
    }
};

}  // namespace berth::image::testing
