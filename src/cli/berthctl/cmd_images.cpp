// berthctl images, pull, rmi, inspecti: the CRI ImageService as kubelet sees it. (`berthctl image ...` works on
// the image store directly and is a different command group.)
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <thread>

#include "command.hpp"

namespace berth::ctl {
namespace {

using IStub = v1::ImageService::Stub;

// "docker.io/library/busybox:1.36" -> {"docker.io/library/busybox", "1.36"}; a port's colon is not a tag's.
std::pair<std::string, std::string> split_repo_tag(const std::string& ref) {
    size_t colon = ref.rfind(':');
    if (colon == std::string::npos || ref.find('/', colon) != std::string::npos) return {ref, "<none>"};
    return {ref.substr(0, colon), ref.substr(colon + 1)};
}

}  // namespace

int cmd_images(const GlobalOptions& opts, const std::vector<std::string>& args) {
    auto p = ParsedArgs::parse("images", args, {{"-q|--quiet", false}, {"--digests", false}, {"--no-trunc", false}}, 1);
    if (!p) return report(p.error());
    v1::ListImagesRequest req;
    if (!p->positional.empty()) req.mutable_filter()->mutable_image()->set_image(p->positional[0]);
    CriClient client(opts.socket_path);
    auto resp = client.image(&IStub::ListImages, "ListImages", req);
    if (!resp) return report(resp.error());
    if (p->has("--quiet")) {
        for (const auto& img : resp->images()) std::printf("%s\n", img.id().c_str());
        return 0;
    }
    if (opts.output != OutputFormat::table) {
        nlohmann::json items = nlohmann::json::array();
        for (const auto& img : resp->images()) {
            auto j = message_to_json(img);
            if (!j) return report(j.error());
            items.push_back(std::move(*j));
        }
        print_document({{"images", items}}, opts.output);
        return 0;
    }
    const bool no_trunc = p->has("--no-trunc"), digests = p->has("--digests");
    std::vector<std::string> headers = {"IMAGE", "TAG"};
    if (digests) headers.push_back("DIGEST");
    headers.insert(headers.end(), {"IMAGE ID", "SIZE"});
    Table t(headers);
    for (const auto& img : resp->images()) {
        std::string digest;
        if (!img.repo_digests().empty()) {
            const std::string& rd = img.repo_digests(0);
            size_t at = rd.find('@');
            digest = short_id(at == std::string::npos ? rd : rd.substr(at + 1), no_trunc);
        }
        auto row = [&](const std::string& repo, const std::string& tag) {
            std::vector<std::string> cells = {repo, tag};
            if (digests) cells.push_back(digest.empty() ? "<none>" : digest);
            cells.push_back(short_id(img.id(), no_trunc));
            cells.push_back(decimal_size(img.size()));
            t.add_row(std::move(cells));
        };
        if (img.repo_tags().empty()) {
            const std::string repo =
                img.repo_digests().empty() ? "<none>" : img.repo_digests(0).substr(0, img.repo_digests(0).find('@'));
            row(repo, "<none>");
        }
        for (const auto& tag : img.repo_tags()) {
            auto [r, tg] = split_repo_tag(tag);
            row(r, tg);
        }
    }
    std::fputs(t.render().c_str(), stdout);
    return 0;
}

int cmd_pull(const GlobalOptions& opts, const std::vector<std::string>& args) {
    auto p = ParsedArgs::parse("pull", args, {{"--creds", true}, {"--auth", true}});
    if (!p) return report(p.error());
    if (p->positional.size() != 1) return report(Error(0, "pull: expected one IMAGE reference"));
    v1::PullImageRequest req;
    req.mutable_image()->set_image(p->positional[0]);
    if (auto creds = p->value("--creds")) {
        size_t colon = creds->find(':');
        if (colon == std::string::npos) return report(Error(0, "pull: --creds must be USERNAME:PASSWORD"));
        req.mutable_auth()->set_username(creds->substr(0, colon));
        req.mutable_auth()->set_password(creds->substr(colon + 1));
    }
    if (auto auth = p->value("--auth")) req.mutable_auth()->set_auth(*auth);

    // The CRI reports no progress: on a terminal, show how long the pull has taken so far.
    std::mutex mu;
    std::condition_variable cv;
    bool done = false;
    std::thread ticker;
    const bool tty = isatty(STDERR_FILENO) == 1;
    const auto start = std::chrono::steady_clock::now();
    if (tty) {
        ticker = std::thread([&] {
            std::unique_lock lock(mu);
            while (!cv.wait_for(lock, std::chrono::milliseconds(100), [&] { return done; })) {
                double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
                std::fprintf(stderr, "\rPulling %s ... %.1fs", p->positional[0].c_str(), s);
            }
            std::fprintf(stderr, "\r\033[K");
        });
    }
    CriClient client(opts.socket_path);
    auto resp = client.image(&IStub::PullImage, "PullImage", req, std::chrono::seconds(0));
    if (tty) {
        {
            std::lock_guard lock(mu);
            done = true;
        }
        cv.notify_one();
        ticker.join();
    }
    if (!resp) return report(resp.error().wrap(p->positional[0]));
    std::printf("Image is up to date for %s\n", resp->image_ref().c_str());
    return 0;
}

int cmd_rmi(const GlobalOptions& opts, const std::vector<std::string>& args) {
    auto p = ParsedArgs::parse("rmi", args, {{"-a|--all", false}});
    if (!p) return report(p.error());
    CriClient client(opts.socket_path);
    std::vector<std::string> refs = p->positional;
    if (p->has("--all")) {
        if (!refs.empty()) return report(Error(0, "rmi: --all takes no IMAGE"));
        auto list = client.image(&IStub::ListImages, "ListImages", v1::ListImagesRequest());
        if (!list) return report(list.error());
        for (const auto& img : list->images()) refs.push_back(img.id());
    } else if (refs.empty()) {
        return report(Error(0, "rmi: expected IMAGE... or --all"));
    }
    int rc = 0;
    for (const auto& ref : refs) {
        // RemoveImage succeeds for an image that is not there: ask first, so a typo is an error for people.
        v1::ImageStatusRequest sreq;
        sreq.mutable_image()->set_image(ref);
        auto st = client.image(&IStub::ImageStatus, "ImageStatus", sreq);
        if (!st) {
            rc = report(st.error().wrap(ref));
            continue;
        }
        if (!st->has_image() || st->image().id().empty()) {
            rc = report(Error(0, fmt::format("{}: no such image", ref)));
            continue;
        }
        v1::RemoveImageRequest req;
        req.mutable_image()->set_image(ref);
        if (auto r = client.image(&IStub::RemoveImage, "RemoveImage", req, std::chrono::seconds(120)); !r) {
            rc = report(r.error().wrap(ref));
            continue;
        }
        std::printf("Deleted: %s\n", st->image().id().c_str());
    }
    return rc;
}

int cmd_inspecti(const GlobalOptions& opts, const std::vector<std::string>& args) {
    auto p = ParsedArgs::parse("inspecti", args, {});
    if (!p) return report(p.error());
    if (p->positional.empty()) return report(Error(0, "inspecti: expected IMAGE..."));
    CriClient client(opts.socket_path);
    int rc = 0;
    for (const auto& ref : p->positional) {
        v1::ImageStatusRequest req;
        req.mutable_image()->set_image(ref);
        req.set_verbose(true);
        auto resp = client.image(&IStub::ImageStatus, "ImageStatus", req);
        if (!resp) {
            rc = report(resp.error().wrap(ref));
            continue;
        }
        if (!resp->has_image() || resp->image().id().empty()) {
            rc = report(Error(0, fmt::format("{}: no such image", ref)));
            continue;
        }
        auto status = message_to_json(resp->image());
        if (!status) return report(status.error());
        nlohmann::json info = nlohmann::json::object();
        for (const auto& [k, v] : resp->info()) {
            auto parsed = nlohmann::json::parse(v, nullptr, false);
            info[k] = parsed.is_discarded() ? nlohmann::json(v) : parsed;
        }
        print_document({{"status", *status}, {"info", info}}, opts.output);
    }
    return rc;
}

}  // namespace berth::ctl
