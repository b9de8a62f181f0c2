// berthctl exec -i/-t, attach and port-forward: the CRI Exec/Attach/PortForward rpcs, then the streaming clients
// (src/stream/client) over SPDY or WebSocket. Terminal raw mode while a tty session runs (restored on every way
// out), SIGWINCH -> resize.
// command.hpp (the CRI headers) before <signal.h>: the CRI Signal enum uses its names.
#include "command.hpp"

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <termios.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <csignal>
#include <cstdio>
#include <mutex>
#include <thread>

#include "stream/client.hpp"

namespace berth::ctl {

namespace {

// The terminal as it was before raw mode; restored by ~RawTerminal and by the fatal-signal handler.
termios g_saved_termios;
std::atomic<bool> g_raw{false};

void restore_and_reraise(int sig) {
    if (g_raw.exchange(false)) ::tcsetattr(STDIN_FILENO, TCSAFLUSH, &g_saved_termios);
    ::signal(sig, SIG_DFL);
    ::raise(sig);
}

class RawTerminal {
public:
    RawTerminal() {
        if (!::isatty(STDIN_FILENO) || ::tcgetattr(STDIN_FILENO, &g_saved_termios) != 0) return;
        termios raw = g_saved_termios;
        ::cfmakeraw(&raw);
        for (int sig : {SIGTERM, SIGHUP, SIGQUIT, SIGINT}) ::signal(sig, restore_and_reraise);
        if (::tcsetattr(STDIN_FILENO, TCSAFLUSH, &raw) == 0) g_raw = true;
    }
    ~RawTerminal() {
        if (g_raw.exchange(false)) ::tcsetattr(STDIN_FILENO, TCSAFLUSH, &g_saved_termios);
    }
    RawTerminal(const RawTerminal&) = delete;
    RawTerminal& operator=(const RawTerminal&) = delete;
};

std::optional<stream::TerminalSize> terminal_size(int fd) {
    winsize ws{};
    if (::ioctl(fd, TIOCGWINSZ, &ws) != 0 || ws.ws_col == 0) return std::nullopt;
    return stream::TerminalSize{ws.ws_col, ws.ws_row};
}

// Pushes the terminal's size now and on every SIGWINCH until destroyed.
class ResizeWatcher {
public:
    explicit ResizeWatcher(stream::TerminalSizeQueue& q) : queue_(q) {
        int fd = isatty(STDOUT_FILENO) ? STDOUT_FILENO : STDIN_FILENO;
        if (auto s = terminal_size(fd)) queue_.push(*s);
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, SIGWINCH);
        // Blocked here before any other thread starts, so every thread inherits the mask and only
        // sigtimedwait below sees the signal.
        pthread_sigmask(SIG_BLOCK, &set, nullptr);
        thread_ = std::thread([this, set, fd] {
            timespec tick{0, 100'000'000};
            while (!stop_.load()) {
                if (sigtimedwait(&set, nullptr, &tick) == SIGWINCH)
                    if (auto s = terminal_size(fd)) queue_.push(*s);
            }
        });
    }
    ~ResizeWatcher() {
        stop_ = true;
        thread_.join();
    }

private:
    stream::TerminalSizeQueue& queue_;
    std::atomic<bool> stop_{false};
    std::thread thread_;
};

struct StreamFlags {
    bool interactive = false;
    bool tty = false;
    std::optional<stream::Transport> transport;
    stream::TlsClientOptions tls;
};

// --stream-ca FILE / --stream-insecure: how an https streaming URL's server is checked.
stream::TlsClientOptions stream_tls(const ParsedArgs& p) {
    return {.ca_file = p.value("--stream-ca").value_or(""), .skip_verify = p.has("--stream-insecure")};
}

Result<StreamFlags> stream_flags(const ParsedArgs& p) {
    StreamFlags f;
    f.tls = stream_tls(p);
    f.interactive = p.has("--interactive") || p.has("-it") || p.has("-ti");
    f.tty = p.has("--tty") || p.has("-it") || p.has("-ti");
    if (auto t = p.value("--transport")) {
        BERTH_ASSIGN(f.transport, stream::parse_transport(*t));
    }
    return f;
}

// Runs the remote command session on `url` with this process's stdio; the exit code is the remote command's.
int run_session(const std::string& url, const StreamFlags& f) {
    stream::RemoteCommandOptions o;
    o.transport = f.transport.value_or(stream::Transport::spdy);
    o.stdin_fd = f.interactive ? STDIN_FILENO : -1;
    o.stdout_fd = STDOUT_FILENO;
    o.stderr_fd = f.tty ? -1 : STDERR_FILENO;
    o.tty = f.tty;
    o.tls = f.tls;
    stream::TerminalSizeQueue sizes;
    std::optional<ResizeWatcher> watcher;
    std::optional<RawTerminal> raw;
    if (f.tty) {
        o.resize = &sizes;
        watcher.emplace(sizes);
        if (f.interactive) raw.emplace();
    }
    auto code = stream::run_remote_command(url, o);
    raw.reset();
    if (!code) return report(code.error());
    return *code;
}

}  // namespace

int exec_streaming(const GlobalOptions& opts, const ParsedArgs& p, const std::vector<std::string>& cmd) {
    auto f = stream_flags(p);
    if (!f) return report(f.error());
    v1::ExecRequest req;
    req.set_container_id(p.positional[0]);
    for (const auto& c : cmd) req.add_cmd(c);
    req.set_stdin(f->interactive);
    req.set_tty(f->tty);
    req.set_stdout(true);
    req.set_stderr(!f->tty);
    CriClient client(opts.socket_path);
    auto resp = client.runtime(&v1::RuntimeService::Stub::Exec, "Exec", req, std::chrono::seconds(30));
    if (!resp) return report(resp.error());
    return run_session(resp->url(), *f);
}

int cmd_attach(const GlobalOptions& opts, const std::vector<std::string>& args) {
    auto p = ParsedArgs::parse("attach", args,
                               {{"-i|--interactive", false}, {"-t|--tty", false}, {"-it", false}, {"-ti", false},
                                {"--transport", true}, {"--stream-ca", true}, {"--stream-insecure", false}});
    if (!p) return report(p.error());
    if (p->positional.size() != 1) return report(Error(0, "attach: expected CONTAINER_ID"));
    auto f = stream_flags(*p);
    if (!f) return report(f.error());
    v1::AttachRequest req;
    req.set_container_id(p->positional[0]);
    req.set_stdin(f->interactive);
    req.set_tty(f->tty);
    req.set_stdout(true);
    req.set_stderr(!f->tty);
    CriClient client(opts.socket_path);
    auto resp = client.runtime(&v1::RuntimeService::Stub::Attach, "Attach", req, std::chrono::seconds(30));
    if (!resp) return report(resp.error());
    return run_session(resp->url(), *f);
}

namespace {

struct Forward {
    UniqueFd listener;
    uint16_t local = 0;
    uint16_t remote = 0;
};

Result<Forward> listen_forward(std::string_view spec) {
    size_t colon = spec.find(':');
    std::string local_s(spec.substr(0, colon)), remote_s(colon == std::string_view::npos ? spec : spec.substr(colon + 1));
    if (colon == std::string_view::npos) local_s = remote_s;  // PORT alone: the same port locally
    auto num = [&](const std::string& s, bool zero_ok) -> Result<uint16_t> {
        char* end = nullptr;
        long v = std::strtol(s.c_str(), &end, 10);
        if (s.empty() || *end || v < (zero_ok ? 0 : 1) || v > 65535)
            return fail("port-forward: bad port {:?} in {:?}", s, spec);
        return uint16_t(v);
    };
    Forward f;
    BERTH_ASSIGN(f.local, num(local_s, true));
    BERTH_ASSIGN(f.remote, num(remote_s, false));
    f.listener.reset(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!f.listener) return fail_sys("port-forward: socket");
    int one = 1;
    ::setsockopt(f.listener.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(f.local);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(f.listener.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0)
        return fail_sys("port-forward: listen on 127.0.0.1:{}", f.local);
    if (::listen(f.listener.get(), 128) != 0) return fail_sys("port-forward: listen on 127.0.0.1:{}", f.local);
    socklen_t len = sizeof(a);
    ::getsockname(f.listener.get(), reinterpret_cast<sockaddr*>(&a), &len);
    f.local = ntohs(a.sin_port);
    return f;
}

}  // namespace

int cmd_port_forward(const GlobalOptions& opts, const std::vector<std::string>& args) {
    auto p = ParsedArgs::parse("port-forward", args,
                               {{"--transport", true}, {"--stream-ca", true}, {"--stream-insecure", false}});
    if (!p) return report(p.error());
    if (p->positional.size() < 2) return report(Error(0, "port-forward: expected POD_ID LOCAL:REMOTE [...]"));
    auto transport = stream::Transport::spdy;
    if (auto t = p->value("--transport")) {
        auto parsed = stream::parse_transport(*t);
        if (!parsed) return report(parsed.error());
        transport = *parsed;
    }
    // SIGINT/SIGTERM end the forwarding through the signalfd below: blocked before any thread starts, so that no
    // thread (the SPDY session's reader, say) takes them with their default action.
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    const std::string pod = p->positional[0];
    std::vector<Forward> forwards;
    for (size_t i = 1; i < p->positional.size(); ++i) {
        auto f = listen_forward(p->positional[i]);
        if (!f) return report(f.error());
        forwards.push_back(std::move(*f));
    }
    CriClient client(opts.socket_path);
    v1::PortForwardRequest req;
    req.set_pod_sandbox_id(pod);
    for (const auto& f : forwards) req.add_port(f.remote);
    // A URL serves one connection. SPDY: for every port at once; WebSocket: one per forwarded connection, naming
    // only its port (the server opens a channel pair, and dials, for every port of the request).
    auto new_url = [&](std::optional<uint16_t> only) -> Result<std::string> {
        v1::PortForwardRequest r = req;
        if (only) {
            r.clear_port();
            r.add_port(*only);
        }
        BERTH_ASSIGN(auto resp, client.runtime(&v1::RuntimeService::Stub::PortForward, "PortForward", r,
                                               std::chrono::seconds(30)));
        return resp.url();
    };
    // SPDY: one connection carries every forwarded connection; made again (new rpc) once it is gone.
    std::mutex spdy_mu;
    std::shared_ptr<stream::SpdyPortForward> spdy;
    auto spdy_session = [&]() -> Result<std::shared_ptr<stream::SpdyPortForward>> {
        std::lock_guard lk(spdy_mu);
        if (!spdy || spdy->closed()) {
            BERTH_ASSIGN(std::string url, new_url(std::nullopt));
            BERTH_ASSIGN(auto s, stream::SpdyPortForward::connect(url, stream_tls(*p)));
            spdy = std::move(s);
        }
        return spdy;
    };
    if (transport == stream::Transport::spdy) {
        // Connect now: a pod that does not exist fails here, not at the first connection.
        if (auto s = spdy_session(); !s) return report(s.error());
    }
    for (const auto& f : forwards) std::printf("Forwarding from 127.0.0.1:%u -> %u\n", f.local, f.remote);
    std::fflush(stdout);

    UniqueFd sigfd(::signalfd(-1, &set, SFD_CLOEXEC));
    std::vector<pollfd> pfds;
    for (const auto& f : forwards) pfds.push_back({f.listener.get(), POLLIN, 0});
    pfds.push_back({sigfd.get(), POLLIN, 0});
    for (;;) {
        if (::poll(pfds.data(), pfds.size(), -1) < 0) {
            if (errno == EINTR) continue;
            break;
        }
        if (pfds.back().revents) break;  // SIGINT/SIGTERM: stop forwarding
        for (size_t i = 0; i < forwards.size(); ++i) {
            if (!pfds[i].revents) continue;
            UniqueFd conn(::accept4(forwards[i].listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
            if (!conn) continue;
            uint16_t remote = forwards[i].remote;
            std::printf("Handling connection for %u\n", remote);
            std::fflush(stdout);
            std::thread([&, remote, c = std::move(conn)]() mutable {
                Result<void> r;
                if (transport == stream::Transport::spdy) {
                    auto s = spdy_session();
                    r = s ? (*s)->forward(std::move(c), remote) : Result<void>(std::unexpected(s.error()));
                } else {
                    auto url = new_url(remote);
                    r = url ? stream::websocket_port_forward(*url, std::move(c), remote, stream_tls(*p))
                            : Result<void>(std::unexpected(url.error()));
                }
                if (!r) std::fprintf(stderr, "berthctl: %s\n", r.error().message().c_str());
            }).detach();
        }
    }
    // Stop: forwardings still running (detached threads using this frame) end with the process.
    if (spdy) spdy->close();
    std::fflush(stdout);
    std::fflush(stderr);
    ::_exit(0);
}

}  // namespace berth::ctl
