// berthctl image pull REF: store::pull_image with the registry settings taken from flags, progress per layer.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <map>

#include "image/reference.hpp"
#include "image_args.hpp"
#include "image_commands.hpp"
#include "image_print.hpp"
#include "store/pull.hpp"

namespace berth::ctl {

namespace {

image::RegistryHost& host_entry(image::RegistryConfig& cfg, const std::string& host) {
    for (auto& h : cfg.hosts)
        if (h.host == host) return h;
    cfg.hosts.push_back(cfg.for_host(host));
    return cfg.hosts.back();
}

Result<store::PullOptions> pull_options(const ImageArgs& a, const image::ImageReference& ref) {
    store::PullOptions opts;
    if (a.has("--platform")) {
        BERTH_ASSIGN(opts.platform, parse_platform(a.value("--platform")));
    }
    if (a.has("--creds")) {
        std::string creds = a.value("--creds");
        size_t colon = creds.find(':');
        if (colon == std::string::npos || colon == 0)
            return fail("--creds: expected USER:PASSWORD");
        opts.credentials.username = creds.substr(0, colon);
        opts.credentials.password = creds.substr(colon + 1);
    }
    for (const auto& host : a.all("--insecure-registry")) {
        if (host.empty() || host.find('/') != std::string::npos)
            return fail("--insecure-registry {:?}: expected a HOST[:PORT]", host);
        host_entry(opts.registries, host).insecure = true;
    }
    for (const auto& m : a.all("--mirror")) {
        size_t eq = m.find('=');
        if (eq == std::string::npos || eq == 0 || eq + 1 == m.size())
            return fail("--mirror {:?}: expected HOST=URL, e.g. docker.io=http://127.0.0.1:5000", m);
        std::string url = m.substr(eq + 1);
        if (!url.starts_with("http://") && !url.starts_with("https://"))
            return fail("--mirror {:?}: the URL must start with http:// or https://", m);
        host_entry(opts.registries, m.substr(0, eq)).mirrors.push_back(std::move(url));
    }
    if (a.has("--ca-file")) {
        std::string ca = a.value("--ca-file");
        if (::access(ca.c_str(), R_OK) < 0) return fail_sys("--ca-file {}", ca);
        host_entry(opts.registries, ref.domain).ca_file = ca;
    }
    return opts;
}

std::string short_digest(const image::Digest& d) {
    return d.hex().substr(0, 12);
}

// Progress for people. On a terminal: one line per layer with a bar, redrawn in place (at most every 100 ms
// unless a layer changes state). Otherwise plain lines: when a layer starts, at each quarter, and when it is done.
class PullDisplay {
public:
    PullDisplay(std::string ref, bool tty) : ref_(std::move(ref)), tty_(tty) {}

    void on(const store::PullEvent& ev) {
        using K = store::PullEvent::Kind;
        switch (ev.kind) {
        case K::resolved:
            std::printf("%s: resolved to %s (%s in layers)\n", ref_.c_str(), ev.digest.string().c_str(),
                        human_size(ev.total).c_str());
            std::fflush(stdout);
            return;
        case K::layer_wait: {
            Layer& l = layer(ev.digest);
            l.state = "waiting";
            if (!tty_) plain(ev.digest, "waiting");
            break;
        }
        case K::layer_bytes: {
            Layer& l = layer(ev.digest);
            l.done = ev.done;
            l.total = ev.total;
            l.state = "pulling";
            if (!tty_) {
                unsigned quarter = ev.total ? static_cast<unsigned>(ev.done * 4 / ev.total) : 0;
                if (!l.started) {
                    l.started = true;
                    plain(ev.digest, fmt::format("pulling {}", human_size(ev.total)));
                }
                if (quarter > l.quarter && quarter < 4) {
                    l.quarter = quarter;
                    plain(ev.digest, fmt::format("{}% ({} of {})", quarter * 25, human_size(ev.done),
                                                 human_size(ev.total)));
                }
                return;
            }
            redraw(false);
            return;
        }
        case K::layer_done: {
            Layer& l = layer(ev.digest);
            l.state = ev.cached ? "already present" : "done";
            if (!ev.cached && l.total) l.done = l.total;
            if (!tty_) plain(ev.digest, ev.cached ? "already present" : fmt::format("done ({})", human_size(l.total)));
            break;
        }
        case K::done:
            if (tty_) redraw(true);
            std::printf("%s: pulled, image id %s\n", ref_.c_str(), ev.digest.string().c_str());
            std::fflush(stdout);
            return;
        }
        if (tty_) redraw(true);
    }

private:
    struct Layer {
        std::string state = "waiting";
        uint64_t done = 0, total = 0;
        bool started = false;
        unsigned quarter = 0;
    };
    Layer& layer(const image::Digest& d) {
        auto [it, added] = layers_.try_emplace(d.string());
        if (added) order_.push_back(d);
        return it->second;
    }
    void plain(const image::Digest& d, const std::string& what) {
        std::printf("layer %s: %s\n", short_digest(d).c_str(), what.c_str());
        std::fflush(stdout);
    }
    void redraw(bool force) {
        auto now = std::chrono::steady_clock::now();
        if (!force && now - last_ < std::chrono::milliseconds(100)) return;
        last_ = now;
        std::string out;
        if (drawn_) out += fmt::format("\x1b[{}A", drawn_);
        for (const auto& d : order_) {
            const Layer& l = layers_.at(d.string());
            constexpr int kWidth = 30;
            int filled = l.total ? static_cast<int>(l.done * kWidth / l.total) : (l.state == "waiting" ? 0 : kWidth);
            out += fmt::format("\r\x1b[2K{} [{}{}] {:>10} / {:<10} {}\n", short_digest(d), std::string(filled, '='),
                               std::string(kWidth - filled, ' '), human_size(l.done), human_size(l.total), l.state);
        }
        drawn_ = order_.size();
        std::fputs(out.c_str(), stdout);
        std::fflush(stdout);
    }

    std::string ref_;
    bool tty_;
    std::map<std::string, Layer> layers_;
    std::vector<image::Digest> order_;
    size_t drawn_ = 0;
    std::chrono::steady_clock::time_point last_{};
};

}  // namespace

int image_pull(const GlobalOptions& g, const std::vector<std::string>& args) {
    auto a = parse_image_args("pull", args, g,
                              {{"--platform", "", true, false},
                               {"--creds", "", true, false},
                               {"--insecure-registry", "", true, true},
                               {"--ca-file", "", true, false},
                               {"--mirror", "", true, true}});
    if (!a) return report(a.error());
    if (a->positional.size() != 1)
        return report(Error(0, fmt::format("image pull: expected one REF, got {} arguments", a->positional.size())));
    const std::string& text = a->positional[0];
    auto ref = image::ImageReference::parse(text);
    if (!ref) return report(ref.error());
    auto opts = pull_options(*a, *ref);
    if (!opts) return report(opts.error().wrap("image pull"));
    auto images = store::Images::open(a->root);
    if (!images) return report(images.error().wrap(fmt::format("open image store {}", a->root)));

    PullDisplay display(ref->string(), ::isatty(STDOUT_FILENO) == 1);
    if (a->output != OutputFormat::json) opts->progress = [&display](const store::PullEvent& ev) { display.on(ev); };
    auto rec = store::pull_image(*images, text, *opts);
    if (!rec) return report(rec.error());
    if (a->output == OutputFormat::json) print_json(image_json(*rec));
    return 0;
}

}  // namespace berth::ctl
