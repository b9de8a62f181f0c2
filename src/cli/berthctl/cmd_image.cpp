// berthctl image ...: the image store of a root directory, used directly (no berthd). The work is done by
// src/store (Images, image_files, pull); this file parses flags and prints.
#include <cstdio>
#include <string_view>
#include <utility>

#include "command.hpp"
#include "image_args.hpp"
#include "image_commands.hpp"
#include "image_print.hpp"
#include "store/image_files.hpp"
#include "store/images.hpp"

namespace berth::ctl {

namespace {

void image_usage(std::FILE* out) {
    std::fprintf(out,
                 "usage: berthctl image COMMAND [--root DIR] [-o json|table] [ARGS]\n"
                 "\n"
                 "Works on the image store under --root (default: $BERTH_ROOT, else %s) directly, without\n"
                 "berthd; safe while berthd or another berthctl uses the same root.\n"
                 "\n"
                 "commands:\n"
                 "  pull REF [--platform OS/ARCH[/VARIANT]] [--creds USER:PASS] [--insecure-registry HOST]...\n"
                 "           [--ca-file PEM] [--mirror HOST=URL]...   fetch an image from a registry\n"
                 "  list                            images: names, id, size, when recorded (alias: ls)\n"
                 "  inspect IMAGE                   the record and the image config, as JSON\n"
                 "  remove IMAGE...                 remove images with all their names, and what only they used\n"
                 "                                  (alias: rm)\n"
                 "  import PATH [--platform P]      an oci-archive, OCI layout directory or docker-archive\n"
                 "  export IMAGE FILE               write an oci-archive\n"
                 "  prune                           remove every blob and snapshot no image uses\n"
                 "  mount IMAGE DIR [--upper DIR]   mount the image's rootfs on DIR: read-only, or writable with\n"
                 "                                  its changes in the --upper dir (made when missing)\n"
                 "  unmount DIR                     undo mount (alias: umount)\n"
                 "\n"
                 "IMAGE is a name (busybox = docker.io/library/busybox:latest), an id, a manifest digest or a\n"
                 "unique id prefix.\n",
                 kDefaultImageRoot);
}

Result<store::Images> open_root(const ImageArgs& a) {
    auto images = store::Images::open(a.root);
    if (!images) return std::unexpected(images.error().wrap(fmt::format("open image store {}", a.root)));
    return images;
}

Result<void> need_args(std::string_view sub, const ImageArgs& a, size_t min, size_t max, std::string_view what) {
    if (a.positional.size() < min || a.positional.size() > max)
        return fail("image {}: expected {}, got {} argument{}", sub, what, a.positional.size(),
                    a.positional.size() == 1 ? "" : "s");
    return {};
}

// What an error about an image names: the key as given.
Error image_error(std::string_view key, const Error& e) {
    if (e.code() == ENOENT && e.message().find(key) == std::string::npos)
        return Error(ENOENT, fmt::format("image {:?}: not found", key));
    return e;
}

int image_list(const GlobalOptions& g, const std::vector<std::string>& args) {
    auto a = parse_image_args("list", args, g, {});
    if (!a) return report(a.error());
    if (auto r = need_args("list", *a, 0, 0, "no arguments"); !r) return report(r.error());
    auto images = open_root(*a);
    if (!images) return report(images.error());
    auto list = images->records().list();
    if (!list) return report(list.error());
    if (a->output == OutputFormat::json) {
        nlohmann::json out = nlohmann::json::array();
        for (const auto& rec : *list) out.push_back(image_json(rec));
        print_json(out);
        return 0;
    }
    // One row per name (a nameless image once, as <none>), ordered by name.
    std::vector<std::pair<std::string, const store::ImageRecord*>> rows;
    for (const auto& rec : *list) {
        if (rec.names.empty()) rows.emplace_back("<none>", &rec);
        for (const auto& n : rec.names) rows.emplace_back(n, &rec);
    }
    std::ranges::sort(rows, {}, [](const auto& r) { return r.first; });
    size_t width = 4;
    for (const auto& [name, rec] : rows) width = std::max(width, name.size());
    std::printf("%-*s  %-12s  %10s  %s\n", static_cast<int>(width), "NAME", "IMAGE ID", "SIZE", "CREATED");
    for (const auto& [name, rec] : rows)
        std::printf("%-*s  %-12s  %10s  %s\n", static_cast<int>(width), name.c_str(), short_id(rec->id).c_str(),
                    human_size(rec->size).c_str(), format_time(rec->created, false).c_str());
    return 0;
}

int image_inspect(const GlobalOptions& g, const std::vector<std::string>& args) {
    auto a = parse_image_args("inspect", args, g, {});
    if (!a) return report(a.error());
    if (auto r = need_args("inspect", *a, 1, 1, "one IMAGE"); !r) return report(r.error());
    auto images = open_root(*a);
    if (!images) return report(images.error());
    const std::string& key = a->positional[0];
    auto rec = images->records().get(key);
    if (!rec) return report(image_error(key, rec.error()));
    nlohmann::json j = image_json(*rec, true);
    if (!rec->chain_ids.empty()) {
        if (auto lowers = images->snapshots().lowerdirs(rec->chain_ids.back()); lowers) j["lowerdirs"] = *lowers;
    }
    print_json(j);  // inspect is JSON for people too
    return 0;
}

int image_remove(const GlobalOptions& g, const std::vector<std::string>& args) {
    auto a = parse_image_args("remove", args, g, {});
    if (!a) return report(a.error());
    if (auto r = need_args("remove", *a, 1, SIZE_MAX, "at least one IMAGE"); !r) return report(r.error());
    auto images = open_root(*a);
    if (!images) return report(images.error());
    nlohmann::json out = nlohmann::json::array();
    int rc = 0;
    for (const auto& key : a->positional) {
        // Resolved to the id first, so what is printed is what goes (a name moved meanwhile does not matter).
        auto rec = images->records().get(key);
        if (!rec) {
            rc = report(image_error(key, rec.error()));
            continue;
        }
        auto stats = images->remove(rec->id.string());
        if (!stats) {
            rc = report(stats.error().wrap(fmt::format("remove image {}", key)));
            continue;
        }
        if (a->output == OutputFormat::json) {
            nlohmann::json j = image_json(*rec);
            j.update(gc_json(*stats));
            out.push_back(std::move(j));
            continue;
        }
        for (const auto& n : rec->names) std::printf("Untagged: %s\n", n.c_str());
        std::printf("Deleted: %s (%zu blobs, %zu snapshots freed)\n", rec->id.string().c_str(),
                    stats->blobs_removed.size(), stats->snapshots_removed.size());
    }
    if (a->output == OutputFormat::json) print_json(out);
    return rc;
}

int image_prune(const GlobalOptions& g, const std::vector<std::string>& args) {
    auto a = parse_image_args("prune", args, g, {});
    if (!a) return report(a.error());
    if (auto r = need_args("prune", *a, 0, 0, "no arguments"); !r) return report(r.error());
    auto images = open_root(*a);
    if (!images) return report(images.error());
    auto stats = images->prune();
    if (!stats) return report(stats.error().wrap(fmt::format("prune {}", a->root)));
    if (a->output == OutputFormat::json) {
        print_json(gc_json(*stats));
        return 0;
    }
    for (const auto& d : stats->blobs_removed) std::printf("blob %s\n", d.string().c_str());
    for (const auto& d : stats->snapshots_removed) std::printf("snapshot %s\n", d.string().c_str());
    std::printf("Removed %zu blobs, %zu snapshots, %llu leftover temp entries\n", stats->blobs_removed.size(),
                stats->snapshots_removed.size(), static_cast<unsigned long long>(stats->temps_removed));
    return 0;
}

Result<image::Platform> platform_flag(const ImageArgs& a) {
    if (!a.has("--platform")) return image::host_platform();
    return parse_platform(a.value("--platform"));
}

int image_import(const GlobalOptions& g, const std::vector<std::string>& args) {
    auto a = parse_image_args("import", args, g, {{"--platform", "", true, false}});
    if (!a) return report(a.error());
    if (auto r = need_args("import", *a, 1, 1, "one PATH"); !r) return report(r.error());
    auto platform = platform_flag(*a);
    if (!platform) return report(platform.error());
    auto images = open_root(*a);
    if (!images) return report(images.error());
    const std::string& path = a->positional[0];
    auto res = store::import_path(*images, path, *platform);
    if (!res) return report(res.error());
    if (a->output == OutputFormat::json) {
        nlohmann::json list = nlohmann::json::array();
        for (const auto& rec : res->images) list.push_back(image_json(rec));
        print_json({{"format", store::to_string(res->format)}, {"images", list}});
        return 0;
    }
    for (const auto& rec : res->images) {
        std::string names;
        for (const auto& n : rec.names) names += (names.empty() ? "" : ", ") + n;
        std::printf("Imported %s (%s, %s) from %s\n", names.empty() ? "<none>" : names.c_str(),
                    rec.id.string().c_str(), human_size(rec.size).c_str(),
                    std::string(store::to_string(res->format)).c_str());
    }
    return 0;
}

int image_export(const GlobalOptions& g, const std::vector<std::string>& args) {
    auto a = parse_image_args("export", args, g, {});
    if (!a) return report(a.error());
    if (auto r = need_args("export", *a, 2, 2, "IMAGE FILE"); !r) return report(r.error());
    auto images = open_root(*a);
    if (!images) return report(images.error());
    const std::string &key = a->positional[0], &file = a->positional[1];
    auto rec = store::export_image(*images, key, file);
    if (!rec) return report(image_error(key, rec.error()));
    if (a->output == OutputFormat::json) {
        nlohmann::json j = image_json(*rec);
        j["file"] = file;
        j["format"] = "oci-archive";
        print_json(j);
        return 0;
    }
    std::printf("Exported %s (%s) to %s\n", rec->names.empty() ? key.c_str() : rec->names.front().c_str(),
                rec->id.string().c_str(), file.c_str());
    return 0;
}

int image_mount(const GlobalOptions& g, const std::vector<std::string>& args) {
    auto a = parse_image_args("mount", args, g, {{"--upper", "", true, false}});
    if (!a) return report(a.error());
    if (auto r = need_args("mount", *a, 2, 2, "IMAGE DIR"); !r) return report(r.error());
    auto images = open_root(*a);
    if (!images) return report(images.error());
    const std::string &key = a->positional[0], &dir = a->positional[1];
    auto m = store::mount_image(*images, key, dir, a->value("--upper"));
    if (!m) return report(image_error(key, m.error()));
    if (a->output == OutputFormat::json) {
        print_json({{"image", image_json(m->image)},
                    {"target", m->target},
                    {"upper", m->upper_dir},
                    {"readOnly", m->upper_dir.empty()},
                    {"lowerdirs", m->lowerdirs}});
        return 0;
    }
    std::printf("Mounted %s (%s, %zu layer%s) on %s, %s\n", key.c_str(), short_id(m->image.id).c_str(),
                m->lowerdirs.size(), m->lowerdirs.size() == 1 ? "" : "s", dir.c_str(),
                m->upper_dir.empty() ? "read-only" : ("changes in " + m->upper_dir).c_str());
    return 0;
}

int image_unmount(const GlobalOptions& g, const std::vector<std::string>& args) {
    auto a = parse_image_args("unmount", args, g, {});
    if (!a) return report(a.error());
    if (auto r = need_args("unmount", *a, 1, 1, "one DIR"); !r) return report(r.error());
    const std::string& dir = a->positional[0];
    if (auto r = store::unmount_image(dir); !r) return report(r.error());
    if (a->output == OutputFormat::json) {
        print_json({{"unmounted", dir}});
        return 0;
    }
    std::printf("Unmounted %s\n", dir.c_str());
    return 0;
}

constexpr std::pair<std::string_view, CommandFn> kImageCommands[] = {
    {"pull", image_pull},       {"list", image_list},     {"ls", image_list},         {"inspect", image_inspect},
    {"remove", image_remove},   {"rm", image_remove},     {"import", image_import},   {"export", image_export},
    {"prune", image_prune},     {"mount", image_mount},   {"unmount", image_unmount}, {"umount", image_unmount},
};

}  // namespace

Result<image::Platform> parse_platform(std::string_view text) {
    image::Platform p;
    std::vector<std::string> parts;
    size_t start = 0;
    for (;;) {
        size_t slash = text.find('/', start);
        parts.emplace_back(text.substr(start, slash == std::string_view::npos ? slash : slash - start));
        if (slash == std::string_view::npos) break;
        start = slash + 1;
    }
    if (parts.size() < 2 || parts.size() > 3 || parts[0].empty() || parts[1].empty() ||
        (parts.size() == 3 && parts[2].empty()))
        return fail("--platform {:?}: expected OS/ARCH[/VARIANT], e.g. linux/amd64 or linux/arm/v7", text);
    p.os = parts[0];
    p.architecture = parts[1];
    if (parts.size() == 3) p.variant = parts[2];
    return p;
}

int cmd_image(const GlobalOptions& opts, const std::vector<std::string>& args) {
    if (args.empty()) {
        image_usage(stderr);
        return 2;
    }
    const std::string& sub = args[0];
    if (sub == "--help" || sub == "-h" || sub == "help") {
        image_usage(stdout);
        return 0;
    }
    std::vector<std::string> rest(args.begin() + 1, args.end());
    for (const auto& r : rest)
        if (r == "--help" || r == "-h") {
            image_usage(stdout);
            return 0;
        }
    for (const auto& [name, fn] : kImageCommands)
        if (name == sub) return fn(opts, rest);
    std::fprintf(stderr, "berthctl: unknown image command %s\n", sub.c_str());
    image_usage(stderr);
    return 2;
}

}  // namespace berth::ctl
