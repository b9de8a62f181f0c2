// How berthctl shows image records: JSON objects for scripts, sizes and times for people.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "store/image_store.hpp"
#include "store/images.hpp"

namespace berth::ctl {

// {"id","names","manifestDigest","manifestMediaType","size","created"}; with `full`, also "chainIds", "blobs" and
// the image config as "config" (parsed JSON).
nlohmann::json image_json(const store::ImageRecord& rec, bool full = false);
// {"blobsRemoved":[...],"snapshotsRemoved":[...],"tempsRemoved":N}
nlohmann::json gc_json(const store::GcStats& stats);
// "1.2 MiB"
std::string human_size(uint64_t bytes);
// Unix seconds as "2026-11-26T14:20:00Z" (rfc3339 = true) or "2026-11-26 14:20:00" (UTC).
std::string format_time(int64_t unix_seconds, bool rfc3339);
// "sha256:<first 12 hex>" → the 12 hex digits people compare.
std::string short_id(const image::Digest& d);
// Prints `j` indented, with a newline, to stdout.
void print_json(const nlohmann::json& j);

}  // namespace berth::ctl
