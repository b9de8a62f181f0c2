#include "stream/port_forward.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <condition_variable>
#include <list>
#include <map>
#include <mutex>
#include <thread>

#include "common/log.hpp"
#include "stream/protocol.hpp"
#include "stream/spdy.hpp"

namespace berth::stream {
namespace {

constexpr size_t kCopyBuffer = 1024 * 1024;
constexpr auto kCloseGrace = std::chrono::seconds(5);

std::string forward_error(uint16_t port, const std::string& pod_id, const std::string& why) {
    return fmt::format("error forwarding port {} to pod {}: {}", port, pod_id, why);
}

// Reads from `fd`; 0 at EOF, -1 on error.
ssize_t read_fd(int fd, char* buf, size_t n) {
    for (;;) {
        ssize_t r = ::read(fd, buf, n);
        if (r < 0 && errno == EINTR) continue;
        return r;
    }
}

bool write_fd(int fd, std::string_view data) {
    while (!data.empty()) {
        ssize_t r = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
        if (r < 0) {
            if (errno == EINTR) continue;
            return false;
        }
        data.remove_prefix(static_cast<size_t>(r));
    }
    return true;
}

// Counts one forwarded connection while it exists.
class LiveCount {
public:
    explicit LiveCount(std::atomic<uint64_t>* c) : c_(c) {
        if (c_) c_->fetch_add(1);
    }
    ~LiveCount() {
        if (c_) c_->fetch_sub(1);
    }
    LiveCount(const LiveCount&) = delete;
    LiveCount& operator=(const LiveCount&) = delete;

private:
    std::atomic<uint64_t>* c_;
};

}  // namespace

// ---- WebSocket ----

void serve_port_forward_ws(Conn& conn, WsChannels& ch, const std::vector<uint16_t>& ports, const DialFn& dial,
                           const std::string& pod_id, std::atomic<uint64_t>* live) {
    struct Port {
        uint16_t port = 0;
        UniqueFd fd;
        std::unique_ptr<LiveCount> count;
        std::thread pump;
    };
    std::vector<Port> ps(ports.size());
    for (size_t i = 0; i < ports.size(); ++i) {
        ps[i].port = ports[i];
        const char le[2] = {static_cast<char>(ports[i] & 0xff), static_cast<char>(ports[i] >> 8)};
        if (!ch.write(static_cast<uint8_t>(2 * i), le) || !ch.write(static_cast<uint8_t>(2 * i + 1), le)) {
            conn.shutdown();
            return;
        }
    }
    std::mutex mu;
    std::condition_variable cv;
    size_t pumping = 0;
    bool reader_done = false;
    for (size_t i = 0; i < ps.size(); ++i) {
        auto fd = dial(ps[i].port);
        if (!fd) {
            std::string msg = forward_error(ps[i].port, pod_id, fd.error().message());
            (void)ch.write(static_cast<uint8_t>(2 * i + 1), std::span<const char>(msg.data(), msg.size()));
            continue;
        }
        ps[i].fd = std::move(*fd);
        ps[i].count = std::make_unique<LiveCount>(live);
        ++pumping;
    }
    // The pod -> client direction of each port; the connection ends when every port's pod side has ended.
    for (size_t i = 0; i < ps.size(); ++i) {
        if (!ps[i].fd) continue;
        ps[i].pump = std::thread([&, i] {
            std::vector<char> buf(kCopyBuffer);
            for (;;) {
                ssize_t n = read_fd(ps[i].fd.get(), buf.data(), buf.size());
                if (n <= 0) break;
                if (!ch.write(static_cast<uint8_t>(2 * i), std::span<const char>(buf.data(), n))) break;
            }
            std::lock_guard lock(mu);
            --pumping;
            cv.notify_all();
        });
    }
    std::thread closer([&] {
        std::unique_lock lock(mu);
        cv.wait(lock, [&] { return pumping == 0 || reader_done; });
        if (reader_done) return;
        lock.unlock();
        (void)ch.socket().close(kWsCloseNormal);
        lock.lock();
        if (!cv.wait_for(lock, kCloseGrace, [&] { return reader_done; })) conn.shutdown();
    });
    // The client -> pod direction, on this thread.
    for (;;) {
        auto f = ch.read();
        if (!f || f->kind == WsChannels::Frame::end) break;
        if (f->kind != WsChannels::Frame::message || f->channel % 2 != 0 || f->channel / 2 >= ps.size()) continue;
        Port& p = ps[f->channel / 2];
        if (p.fd && !write_fd(p.fd.get(), f->data)) ::shutdown(p.fd.get(), SHUT_WR);
    }
    {
        std::lock_guard lock(mu);
        reader_done = true;
        cv.notify_all();
    }
    for (auto& p : ps)
        if (p.fd) ::shutdown(p.fd.get(), SHUT_RDWR);
    for (auto& p : ps)
        if (p.pump.joinable()) p.pump.join();
    closer.join();
    conn.shutdown();
}

// ---- SPDY ----

namespace {

// One forwarded connection: the data and error streams of one request id.
void forward_pair(std::shared_ptr<spdy::Stream> data, std::shared_ptr<spdy::Stream> error,
                  const std::vector<uint16_t>& allowed, const DialFn& dial, const std::string& pod_id,
                  std::atomic<uint64_t>* live) {
    auto report = [&](uint16_t port, const std::string& why) {
        std::string msg = forward_error(port, pod_id, why);
        (void)error->write(std::span<const char>(msg.data(), msg.size()));
        (void)error->close_write();
        (void)data->close_write();
    };
    std::string port_text = data->header(kPortHeader);
    unsigned port = 0;
    auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    if (ec != std::errc() || end != port_text.data() + port_text.size() || port == 0 || port > 65535) {
        report(0, fmt::format("invalid port header \"{}\"", port_text));
        return;
    }
    if (!allowed.empty() && std::find(allowed.begin(), allowed.end(), port) == allowed.end()) {
        report(static_cast<uint16_t>(port), "the PortForward request did not name this port");
        return;
    }
    auto fd = dial(static_cast<uint16_t>(port));
    if (!fd) {
        report(static_cast<uint16_t>(port), fd.error().message());
        return;
    }
    LiveCount count(live);
    int sock = fd->get();
    // client -> pod; a FIN from the client half-closes the TCP connection.
    std::thread up([&] {
        std::string chunk;
        for (;;) {
            auto n = data->read_chunk(chunk);
            if (!n) {
                ::shutdown(sock, SHUT_RDWR);
                return;
            }
            if (*n == 0) {
                ::shutdown(sock, SHUT_WR);
                return;
            }
            if (!write_fd(sock, chunk)) {
                data->reset(spdy::RstStatus::cancel);
                return;
            }
        }
    });
    // pod -> client (spliced: the bytes do not pass through berthd's memory); the pod's EOF half-closes the data
    // stream.
    for (;;) {
        auto n = data->write_from(sock, kCopyBuffer);
        if (n && *n == 0) {
            (void)data->close_write();
            break;
        }
        if (!n) {
            log::debug("streaming: port-forward to pod {} port {}: {}", pod_id, port, n.error().message());
            data->reset(spdy::RstStatus::cancel);
            break;
        }
    }
    up.join();
    (void)error->close_write();
}

}  // namespace

void serve_port_forward_spdy(spdy::Session& session, const std::vector<uint16_t>& allowed, const DialFn& dial,
                             const std::string& pod_id, std::chrono::milliseconds pair_timeout,
                             std::atomic<uint64_t>* live) {
    struct Pending {
        std::shared_ptr<spdy::Stream> data, error;
        std::chrono::steady_clock::time_point since;
    };
    std::map<std::string, Pending> pending;
    struct Worker {
        std::thread thread;
        std::shared_ptr<std::atomic<bool>> done;
    };
    // A session may live for hours and forward thousands of connections: finished workers are joined as it goes.
    std::list<Worker> workers;
    auto reap = [&] {
        for (auto it = workers.begin(); it != workers.end();) {
            if (!it->done->load()) {
                ++it;
                continue;
            }
            it->thread.join();
            it = workers.erase(it);
        }
    };
    for (;;) {
        // Wake at least once a second to drop pairs whose second stream never came.
        auto stream = session.accept(std::chrono::milliseconds(1000));
        auto now = std::chrono::steady_clock::now();
        reap();
        for (auto it = pending.begin(); it != pending.end();) {
            if (now - it->second.since < pair_timeout) {
                ++it;
                continue;
            }
            log::debug("streaming: port-forward request {}: timed out waiting for its other stream", it->first);
            if (it->second.data) it->second.data->reset(spdy::RstStatus::cancel);
            if (it->second.error) it->second.error->reset(spdy::RstStatus::cancel);
            it = pending.erase(it);
        }
        if (!stream) {
            if (stream.error().code() == ETIMEDOUT && !session.closed()) continue;
            break;
        }
        auto s = std::move(*stream);
        std::string type = s->header(kStreamTypeHeader);
        std::string request_id = s->header(kRequestIdHeader);
        if (request_id.empty()) {
            // Old clients send no request id: their data and error streams are consecutive (error = data + 2).
            if (type == kStreamTypeError)
                request_id = std::to_string(s->id());
            else if (type == kStreamTypeData)
                request_id = std::to_string(s->id() - 2);
        }
        if (type != kStreamTypeData && type != kStreamTypeError) {
            log::debug("streaming: port-forward: stream of type \"{}\" reset", type);
            s->reset(spdy::RstStatus::protocol_error);
            continue;
        }
        auto [it, fresh] = pending.try_emplace(request_id, Pending{.since = now});
        auto& slot = type == kStreamTypeData ? it->second.data : it->second.error;
        if (slot) {
            s->reset(spdy::RstStatus::protocol_error);
            continue;
        }
        slot = std::move(s);
        if (it->second.data && it->second.error) {
            auto done = std::make_shared<std::atomic<bool>>(false);
            workers.push_back(Worker{std::thread([&allowed, &dial, &pod_id, live, done, d = std::move(it->second.data),
                                                  e = std::move(it->second.error)] {
                                         forward_pair(d, e, allowed, dial, pod_id, live);
                                         done->store(true);
                                     }),
                                     done});
            pending.erase(it);
        }
    }
    for (auto& [id, p] : pending) {
        if (p.data) p.data->reset(spdy::RstStatus::cancel);
        if (p.error) p.error->reset(spdy::RstStatus::cancel);
    }
    // The session ended: every stream fails, each worker's up thread shuts its socket, and the workers end.
    session.close();
    for (auto& w : workers) w.thread.join();
}

}  // namespace berth::stream
