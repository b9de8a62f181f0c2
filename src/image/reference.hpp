// Image references ("busybox", "quay.io/org/app:1.2", "host:5000/x/y@sha256:...") parsed and normalized the way
// the container ecosystem (docker, containerd, CRI-O) does:
//   - the first path component is a registry host only if it contains '.' or ':' or is "localhost" (or holds an
//     uppercase letter, which a repository path may not); otherwise the registry is docker.io;
//   - "index.docker.io" is spelled "docker.io"; a one-component name on docker.io gets "library/" in front;
//   - a reference with neither tag nor digest gets the tag "latest"; one with a digest keeps no implied tag.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "common/error.hpp"
#include "image/digest.hpp"

namespace berth::image {

struct ImageReference {
    std::string domain;      // "docker.io", "host:5000", "[::1]:5000"
    std::string repository;  // "library/busybox", "x/y" (the path below the domain)
    std::string tag;         // "latest", or empty when the reference has only a digest
    Digest digest;           // valid() when the reference pins one

    // Parses and normalizes `text`. Errors quote the reference and say what is wrong.
    [[nodiscard]] static Result<ImageReference> parse(std::string_view text);

    // "domain/repository"
    std::string name() const { return domain + "/" + repository; }
    // The normalized reference: "name[:tag][@digest]".
    std::string string() const;

    friend bool operator==(const ImageReference&, const ImageReference&) = default;
};

}  // namespace berth::image
