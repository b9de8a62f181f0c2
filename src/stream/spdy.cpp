// SPDY/3.1 session: one reader thread parses frames (spdy_frames) and updates stream state under one mutex;
// callers block on one condition variable. Frames are written synchronously under a write mutex that also orders
// header-block compression (lock order: write_mu_ before mu_, never the other way).
//
// Flow control and kubelet's peers: moby/spdystream (kubelet's streaming server and client-go's client) never sends
// WINDOW_UPDATE or SETTINGS and ignores ours; it pushes back through TCP instead (its reader blocks until the
// stream's reader takes each frame). So a session enforces the peer's windows on what it sends only once the peer
// has shown that it does flow control (a SETTINGS or WINDOW_UPDATE frame; this implementation sends SETTINGS
// first thing), and reports a peer that overruns our windows only then. Against a peer without flow control, the
// reader thread stops reading while a stream holds kUnflowedBufferLimit unread bytes: TCP backpressure, never
// unbounded buffering.
#include "stream/spdy.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "stream/spdy_frames.hpp"

namespace berth::stream::spdy {

namespace {

// DATA frames carry up to this much: large enough that per-frame costs (a lock, a wakeup, a syscall) stay small
// next to the copying, small enough that streams sharing the session take turns.
constexpr size_t kMaxDataChunk = 1024 * 1024;
constexpr size_t kUnflowedBufferLimit = 1024 * 1024;
constexpr size_t kAcceptBacklog = 1024;
constexpr size_t kReadChunk = 16 * 1024;  // what the reader reads into its frame buffer at a time
constexpr size_t kSplicePipeSize = 1024 * 1024;
constexpr size_t kDirectReadMin = 16 * 1024;  // DATA payloads from this size are read straight into their chunk
constexpr size_t kMaxSpare = 4;                // chunk buffers kept for reuse per session (up to 1 MiB each)

std::string_view rst_name(uint32_t status) {
    switch (RstStatus(status)) {
        case RstStatus::protocol_error: return "PROTOCOL_ERROR";
        case RstStatus::invalid_stream: return "INVALID_STREAM";
        case RstStatus::refused_stream: return "REFUSED_STREAM";
        case RstStatus::unsupported_version: return "UNSUPPORTED_VERSION";
        case RstStatus::cancel: return "CANCEL";
        case RstStatus::internal_error: return "INTERNAL_ERROR";
        case RstStatus::flow_control_error: return "FLOW_CONTROL_ERROR";
        case RstStatus::stream_in_use: return "STREAM_IN_USE";
        case RstStatus::stream_already_closed: return "STREAM_ALREADY_CLOSED";
        case RstStatus::frame_too_large: return "FRAME_TOO_LARGE";
    }
    return "unknown status";
}

class Core;

class StreamImpl final : public Stream {
public:
    StreamImpl(std::shared_ptr<Core> core, uint32_t id, bool local, Headers headers, int64_t window)
        : core_(std::move(core)), id_(id), local_(local), headers_(std::move(headers)), recv_window(window) {}

    uint32_t id() const override { return id_; }
    const Headers& headers() const override { return headers_; }
    std::string header(std::string_view name) const override {
        for (const auto& [n, v] : headers_)
            if (n == name) return v.substr(0, v.find('\0'));
        return {};
    }
    Result<size_t> read(std::span<char> buf) override;
    Result<size_t> read_chunk(std::string& out) override;
    Result<void> write(std::span<const char> data) override;
    Result<size_t> write_from(int fd, size_t max) override;
    Result<void> close_write() override;
    void reset(RstStatus status) override;

    enum class Reset { none, local, remote };

    // Everything below is guarded by Core::mu_.
    std::shared_ptr<Core> core_;
    const uint32_t id_;
    const bool local_;  // opened by us
    const Headers headers_;
    bool replied = false;
    bool remote_fin = false;
    bool local_fin = false;
    Reset reset_by = Reset::none;
    uint32_t reset_status = 0;
    std::deque<std::string> chunks;
    size_t chunk_off = 0;
    size_t buffered = 0;
    int64_t send_window = kDefaultWindow;
    int64_t recv_window;
    int64_t unacked = 0;  // consumed by read() and not yet granted back

    // Only the stream's writer uses these.
    UniqueFd splice_r, splice_w;  // write_from's pipe
    std::vector<char> copy_buf;    // write_from's buffer where it cannot splice

private:
    // Waits until data, the peer's FIN, a reset or the session's end; true when data is buffered (or `want_none`),
    // false at the FIN, an error otherwise. Core::mu_ held.
    [[nodiscard]] Result<bool> wait_readable_locked(std::unique_lock<std::mutex>& lk, bool want_none);
    // Waits for send window and takes up to `want` bytes of it (of both the stream's and the session's).
    [[nodiscard]] Result<size_t> reserve(size_t want);
};

class Core : public std::enable_shared_from_this<Core> {
public:
    Core(std::unique_ptr<Conn> conn, Session::Role role)
        : windows_(role == Session::Role::client ? kClientRecvWindows : kServerRecvWindows),
          session_recv_window_(windows_.session),
          conn_(std::move(conn)),
          role_(role) {
        next_stream_id_ = role == Session::Role::client ? 1 : 2;
        next_ping_id_ = next_stream_id_;
    }

    void run_reader(std::string buffered);
    void end(std::string reason);
    [[nodiscard]] Result<void> send(const Frame& f);
    [[nodiscard]] Result<void> send_data(StreamImpl& s, std::span<const char> data, uint8_t flags);
    // A DATA frame whose `n` bytes of payload wait in `pipe` (spliced to the socket, not copied).
    [[nodiscard]] Result<void> send_data_spliced(StreamImpl& s, int pipe, size_t n);
    bool can_splice() const { return conn_->splice_fd() >= 0; }
    [[nodiscard]] Result<std::shared_ptr<Stream>> accept(std::chrono::milliseconds timeout);
    [[nodiscard]] Result<std::shared_ptr<Stream>> open(const Headers& headers);
    [[nodiscard]] Result<std::chrono::microseconds> ping();
    void goaway();
    void release_streams() {
        std::map<uint32_t, std::shared_ptr<StreamImpl>> streams;
        std::deque<std::shared_ptr<StreamImpl>> queue;
        {
            std::lock_guard lk(mu_);
            streams.swap(streams_);
            queue.swap(accept_queue_);
        }
    }
    bool ended() {
        std::lock_guard lk(mu_);
        return ended_;
    }
    void wait_ended() {
        std::unique_lock lk(mu_);
        cv_.wait(lk, [&] { return ended_; });
    }

    // Guarded by mu_ (the streams' state too).
    std::mutex mu_;
    std::condition_variable cv_;
    bool ended_ = false;
    std::string end_reason_;
    bool peer_flow_control_ = false;
    int64_t session_send_window_ = kDefaultWindow;
    const RecvWindows windows_;  // what we announce (see spdy_frames.hpp)
    int64_t session_recv_window_;
    int64_t session_unacked_ = 0;
    int64_t initial_send_window_ = kDefaultWindow;

    [[nodiscard]] std::unexpected<Error> ended_error(std::string_view what) const {
        return fail_errno(EPIPE, "{}: spdy session ended ({})", what, end_reason_);
    }
    // Chunk buffers handed back by read_chunk(), for the reader to receive DATA payloads into: a large payload in
    // a fresh allocation costs page faults and zeroing on every frame (glibc maps such blocks anew each time).
    std::vector<std::string> spare_;  // mu_
    std::string take_spare() {
        std::lock_guard lk(mu_);
        if (spare_.empty()) return {};
        std::string s = std::move(spare_.back());
        spare_.pop_back();
        return s;
    }
    void give_spare_locked(std::string s) {
        if (s.capacity() >= kDirectReadMin && spare_.size() < kMaxSpare) spare_.push_back(std::move(s));
    }
    // Grants consumed bytes back to the peer once half a window has accumulated; the frames to send are appended.
    void grant_locked(StreamImpl* s, int64_t consumed, std::vector<Frame>& out);
    void remove_locked(const StreamImpl& s);

private:
    using Frames = std::vector<Frame>;
    [[nodiscard]] Result<void> write_locked(const Frame& f);  // write_mu_ held
    void send_all(const Frames& frames);
    // A session error: GOAWAY PROTOCOL_ERROR, then the end.
    void protocol_error(std::string reason);
    // Handles one frame; frames to send are collected in `out`. Returns false when the session must end with a
    // protocol error (`error` says why).
    bool handle(Frame& f, Frames& out, std::string& error, std::unique_lock<std::mutex>& lk);
    void stream_error_locked(StreamImpl& s, RstStatus status, Frames& out);
    bool peer_parity(uint32_t id) const { return (id & 1) == (role_ == Session::Role::server ? 1u : 0u); }
    bool ever_opened_locked(uint32_t id) const {
        return peer_parity(id) ? id <= last_peer_id_ : id < next_stream_id_;
    }
    void check_drained_locked();

    std::unique_ptr<Conn> conn_;
    const Session::Role role_;
    std::mutex write_mu_;
    FrameEncoder encoder_;  // write_mu_

    // mu_:
    uint32_t next_stream_id_;
    uint32_t next_ping_id_;
    uint32_t last_peer_id_ = 0;
    bool goaway_sent_ = false;
    bool goaway_received_ = false;
    std::map<uint32_t, std::shared_ptr<StreamImpl>> streams_;
    std::deque<std::shared_ptr<StreamImpl>> accept_queue_;
    std::set<uint32_t> pings_answered_;
};

// ---- Core ----

Result<void> Core::write_locked(const Frame& f) {
    std::string wire;
    if (auto r = encoder_.encode(f, wire); !r) {
        end(r.error().message());
        return std::unexpected(std::move(r).error());
    }
    if (auto r = conn_->write_all(wire); !r) {
        end(r.error().message());
        return std::unexpected(std::move(r).error().wrap("spdy: send frame"));
    }
    return {};
}

Result<void> Core::send(const Frame& f) {
    std::lock_guard wl(write_mu_);
    {
        std::lock_guard lk(mu_);
        if (ended_) return ended_error("send frame");
    }
    return write_locked(f);
}

void Core::send_all(const Frames& frames) {
    for (const auto& f : frames)
        if (!send(f)) return;
}

Result<void> Core::send_data(StreamImpl& s, std::span<const char> data, uint8_t flags) {
    std::lock_guard wl(write_mu_);
    {
        std::lock_guard lk(mu_);
        if (ended_) return ended_error(fmt::format("write to stream {}", s.id_));
        if (s.reset_by != StreamImpl::Reset::none)
            return fail_errno(ECONNRESET, "write to stream {}: stream was reset", s.id_);
    }
    std::string header;
    FrameEncoder::data_header(s.id_, flags, uint32_t(data.size()), header);
    if (auto r = conn_->write_all(header, data); !r) {
        end(r.error().message());
        return std::unexpected(std::move(r).error().wrap(fmt::format("write to stream {}", s.id_)));
    }
    return {};
}

Result<void> Core::send_data_spliced(StreamImpl& s, int pipe, size_t n) {
    std::lock_guard wl(write_mu_);
    {
        std::lock_guard lk(mu_);
        if (ended_) return ended_error(fmt::format("write to stream {}", s.id_));
        if (s.reset_by != StreamImpl::Reset::none)
            return fail_errno(ECONNRESET, "write to stream {}: stream was reset", s.id_);
    }
    int sock = conn_->splice_fd();
    if (sock < 0) return ended_error(fmt::format("write to stream {}", s.id_));
    std::string header;
    FrameEncoder::data_header(s.id_, 0, uint32_t(n), header);
    auto broken = [&](std::string_view what) -> std::unexpected<Error> {
        auto err = fail_sys("write to stream {}: {}", s.id_, what);
        end(err.error().message());
        return err;
    };
    // MSG_MORE: the header leaves in one segment with the payload that follows.
    for (size_t off = 0; off < header.size();) {
        ssize_t k = ::send(sock, header.data() + off, header.size() - off, MSG_NOSIGNAL | MSG_MORE);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) return broken("send frame header");
        off += size_t(k);
    }
    while (n > 0) {
        ssize_t k = ::splice(pipe, nullptr, sock, nullptr, n, SPLICE_F_MOVE);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return broken("splice payload");
        n -= size_t(k);
    }
    return {};
}

void Core::end(std::string reason) {
    {
        std::lock_guard lk(mu_);
        if (ended_) return;
        ended_ = true;
        end_reason_ = std::move(reason);
        cv_.notify_all();
    }
    conn_->shutdown();
}

void Core::protocol_error(std::string reason) {
    uint32_t last;
    {
        std::lock_guard lk(mu_);
        last = last_peer_id_;
    }
    (void)send(GoAway{last, uint32_t(GoAwayStatus::protocol_error)});
    end("protocol error: " + reason);
}

void Core::remove_locked(const StreamImpl& s) {
    streams_.erase(s.id_);
    check_drained_locked();
}

void Core::check_drained_locked() {
    // After the peer's GOAWAY no new stream can come: the session is over once the last one is.
    if (goaway_received_ && streams_.empty() && !ended_) {
        ended_ = true;
        end_reason_ = "the peer sent GOAWAY and no streams remain";
        cv_.notify_all();
        conn_->shutdown();
    }
}

void Core::grant_locked(StreamImpl* s, int64_t consumed, Frames& out) {
    // Granted back once a quarter of a window is consumed: the sender never runs dry while an update is on its way.
    if (s) {
        s->unacked += consumed;
        if (s->unacked >= int64_t(windows_.stream / 4) && !s->remote_fin && s->reset_by == StreamImpl::Reset::none) {
            out.push_back(WindowUpdate{s->id_, uint32_t(s->unacked)});
            s->recv_window += s->unacked;
            s->unacked = 0;
        }
    }
    session_unacked_ += consumed;
    if (session_unacked_ >= int64_t(windows_.session / 4)) {
        out.push_back(WindowUpdate{0, uint32_t(session_unacked_)});
        session_recv_window_ += session_unacked_;
        session_unacked_ = 0;
    }
}

void Core::stream_error_locked(StreamImpl& s, RstStatus status, Frames& out) {
    if (s.reset_by == StreamImpl::Reset::none) {
        s.reset_by = StreamImpl::Reset::local;
        s.reset_status = uint32_t(status);
        int64_t dropped = int64_t(s.buffered);
        s.chunks.clear();
        s.buffered = 0;
        s.chunk_off = 0;
        out.push_back(RstStream{s.id_, uint32_t(status)});
        grant_locked(nullptr, dropped, out);
    }
    remove_locked(s);
    cv_.notify_all();
}

bool Core::handle(Frame& frame, Frames& out, std::string& error, std::unique_lock<std::mutex>& lk) {
    auto find = [&](uint32_t id) -> StreamImpl* {
        auto it = streams_.find(id);
        return it == streams_.end() ? nullptr : it->second.get();
    };
    if (auto* d = std::get_if<DataFrame>(&frame)) {
        int64_t len = int64_t(d->data.size());
        session_recv_window_ -= len;
        if (peer_flow_control_ && session_recv_window_ < 0) {
            error = fmt::format("data on stream {} overran the session window", d->stream_id);
            return false;
        }
        auto it = streams_.find(d->stream_id);
        std::shared_ptr<StreamImpl> keep = it == streams_.end() ? nullptr : it->second;
        StreamImpl* s = keep.get();
        if (!s) {
            // A stream already gone (reset, closed): its data in flight is dropped. Never opened: INVALID_STREAM.
            grant_locked(nullptr, len, out);
            if (!ever_opened_locked(d->stream_id))
                out.push_back(RstStream{d->stream_id, uint32_t(RstStatus::invalid_stream)});
            return true;
        }
        if (s->local_ && !s->replied) {
            grant_locked(nullptr, len, out);
            stream_error_locked(*s, RstStatus::protocol_error, out);
            return true;
        }
        if (s->remote_fin) {
            grant_locked(nullptr, len, out);
            stream_error_locked(*s, RstStatus::stream_already_closed, out);
            return true;
        }
        s->recv_window -= len;
        if (peer_flow_control_ && s->recv_window < 0) {
            grant_locked(nullptr, len, out);
            stream_error_locked(*s, RstStatus::flow_control_error, out);
            return true;
        }
        if (len > 0) {
            s->chunks.push_back(std::move(d->data));
            s->buffered += size_t(len);
        }
        if (d->flags & kFlagFin) {
            s->remote_fin = true;
            if (s->local_fin) remove_locked(*s);
        }
        cv_.notify_all();
        if (!peer_flow_control_ && s->buffered > kUnflowedBufferLimit) {
            // Backpressure for peers without flow control: stop reading the connection until this stream's
            // reader catches up. Frames to send go out first (they must not wait behind this).
            Frames pending;
            pending.swap(out);
            lk.unlock();
            send_all(pending);
            lk.lock();
            cv_.wait(lk, [&] {
                return ended_ || keep->buffered <= kUnflowedBufferLimit / 2 ||
                       keep->reset_by != StreamImpl::Reset::none;
            });
        }
        return true;
    }
    if (auto* f = std::get_if<SynStream>(&frame)) {
        if (!peer_parity(f->stream_id) || f->stream_id <= last_peer_id_) {
            error = fmt::format("SYN_STREAM with stream id {} (last {}; the peer's ids are {})", f->stream_id,
                                last_peer_id_, role_ == Session::Role::server ? "odd" : "even");
            return false;
        }
        last_peer_id_ = f->stream_id;
        if (goaway_sent_ || accept_queue_.size() >= kAcceptBacklog) {
            out.push_back(RstStream{f->stream_id, uint32_t(RstStatus::refused_stream)});
            return true;
        }
        auto s = std::make_shared<StreamImpl>(shared_from_this(), f->stream_id, false, std::move(f->headers),
                                              windows_.stream);
        s->replied = true;
        s->remote_fin = (f->flags & kFlagFin) != 0;
        s->local_fin = (f->flags & kFlagUnidirectional) != 0;
        s->send_window = initial_send_window_;
        streams_[s->id_] = s;
        // The reply goes out before accept() can hand the stream over, so it precedes any data on it.
        if (!s->local_fin) out.push_back(SynReply{s->id_, 0, {}});
        Frames pending;
        pending.swap(out);
        lk.unlock();
        send_all(pending);
        lk.lock();
        if (s->remote_fin && s->local_fin) remove_locked(*s);
        accept_queue_.push_back(std::move(s));
        cv_.notify_all();
        return true;
    }
    if (auto* f = std::get_if<SynReply>(&frame)) {
        StreamImpl* s = find(f->stream_id);
        if (!s) {
            if (!ever_opened_locked(f->stream_id))
                out.push_back(RstStream{f->stream_id, uint32_t(RstStatus::invalid_stream)});
            return true;
        }
        if (!s->local_ || s->replied) {
            stream_error_locked(*s, RstStatus::stream_in_use, out);
            return true;
        }
        s->replied = true;
        if (f->flags & kFlagFin) {
            s->remote_fin = true;
            if (s->local_fin) remove_locked(*s);
        }
        cv_.notify_all();
        return true;
    }
    if (auto* f = std::get_if<RstStream>(&frame)) {
        if (StreamImpl* s = find(f->stream_id)) {
            if (s->reset_by == StreamImpl::Reset::none) {
                s->reset_by = StreamImpl::Reset::remote;
                s->reset_status = f->status;
            }
            remove_locked(*s);
            cv_.notify_all();
        }
        return true;
    }
    if (auto* f = std::get_if<Settings>(&frame)) {
        peer_flow_control_ = true;
        for (const auto& e : f->entries) {
            if (e.id != uint32_t(SettingId::initial_window_size)) continue;
            if (e.value > kMaxWindow) {
                error = fmt::format("SETTINGS_INITIAL_WINDOW_SIZE of {}", e.value);
                return false;
            }
            int64_t delta = int64_t(e.value) - initial_send_window_;
            initial_send_window_ = e.value;
            for (auto& [id, s] : streams_) s->send_window += delta;
        }
        cv_.notify_all();
        return true;
    }
    if (auto* f = std::get_if<Ping>(&frame)) {
        bool ours = (f->id & 1) == (role_ == Session::Role::client ? 1u : 0u);
        if (ours) {
            pings_answered_.insert(f->id);
            cv_.notify_all();
        } else {
            out.push_back(Ping{f->id});
        }
        return true;
    }
    if (auto* f = std::get_if<GoAway>(&frame)) {
        goaway_received_ = true;
        // Streams we opened past the peer's last good id were never seen by it.
        std::vector<std::shared_ptr<StreamImpl>> refused;
        for (auto& [id, s] : streams_)
            if (s->local_ && id > f->last_good_stream_id) refused.push_back(s);
        for (auto& s : refused) {
            if (s->reset_by == StreamImpl::Reset::none) {
                s->reset_by = StreamImpl::Reset::remote;
                s->reset_status = uint32_t(RstStatus::refused_stream);
            }
            streams_.erase(s->id_);
        }
        check_drained_locked();
        cv_.notify_all();
        return true;
    }
    if (auto* f = std::get_if<HeadersFrame>(&frame)) {
        // Extra headers are not surfaced (nothing in kubelet's protocols sends them); FIN is honoured.
        if (StreamImpl* s = find(f->stream_id); s && (f->flags & kFlagFin)) {
            s->remote_fin = true;
            if (s->local_fin) remove_locked(*s);
            cv_.notify_all();
        }
        return true;
    }
    if (auto* f = std::get_if<WindowUpdate>(&frame)) {
        peer_flow_control_ = true;
        if (f->stream_id == 0) {
            session_send_window_ += f->delta;
            if (session_send_window_ > kMaxWindow) {
                error = "WINDOW_UPDATE overflowed the session window";
                return false;
            }
        } else if (StreamImpl* s = find(f->stream_id)) {
            s->send_window += f->delta;
            if (s->send_window > kMaxWindow) stream_error_locked(*s, RstStatus::flow_control_error, out);
        }
        cv_.notify_all();
        return true;
    }
    return true;  // UnknownControl: ignored, as the spec says
}

void Core::run_reader(std::string buffered) {
    FrameDecoder decoder;
    decoder.feed(buffered);
    // Handles one frame; false when the reader must stop.
    auto dispatch = [&](Frame& frame) {
        Frames out;
        std::string error;
        bool ok;
        {
            std::unique_lock lk(mu_);
            if (ended_) return false;
            ok = handle(frame, out, error, lk);
        }
        send_all(out);
        if (!ok) protocol_error(error);
        return ok;
    };
    // Reads at least one byte into `buf`; false (the session ended) at EOF or an error.
    auto read_some = [&](std::span<char> buf, size_t* got, bool mid_frame) {
        auto n = conn_->read(buf);
        if (!n) {
            end(n.error().message());
            return false;
        }
        if (*n == 0) {
            end(mid_frame ? "connection closed by the peer in the middle of a frame" : "connection closed by the peer");
            return false;
        }
        *got = *n;
        return true;
    };
    for (;;) {
        for (;;) {
            auto next = decoder.next();
            if (!next) {
                protocol_error(next.error().message());
                return;
            }
            if (!*next) break;
            if (!dispatch(**next)) return;
        }
        // A large DATA frame still arriving: the rest of its payload is read straight into the chunk the stream
        // will hold, not through the decoder's buffer (one copy less per byte).
        if (decoder.partial_data_pending(kDirectReadMin)) {
            // A recycled buffer, taken only when a frame is there to fill it (the pool is under the session lock).
            std::string buffer = take_spare();
            auto partial = decoder.take_partial_data(kDirectReadMin, buffer);
            std::string& data = partial->data;
            size_t have = data.size();
            data.resize_and_overwrite(partial->length, [](char*, size_t n) { return n; });
            while (have < data.size()) {
                size_t n;
                if (!read_some(std::span<char>(data.data() + have, data.size() - have), &n, true)) return;
                have += n;
            }
            Frame frame{DataFrame{partial->stream_id, partial->flags, std::move(data)}};
            if (!dispatch(frame)) return;
            continue;
        }
        size_t n;
        // At most kReadChunk at a time: a large DATA frame's payload beyond it is read straight into its chunk
        // (above) rather than copied out of the decoder's buffer.
        if (!read_some(decoder.space(kReadChunk).first(kReadChunk), &n, decoder.buffered() > 0)) return;
        decoder.commit(n);
    }
}

Result<std::shared_ptr<Stream>> Core::accept(std::chrono::milliseconds timeout) {
    std::unique_lock lk(mu_);
    auto ready = [&] { return !accept_queue_.empty() || ended_ || goaway_sent_ || goaway_received_; };
    if (timeout.count() < 0)
        cv_.wait(lk, ready);
    else
        cv_.wait_for(lk, timeout, ready);
    if (!accept_queue_.empty()) {
        auto s = std::move(accept_queue_.front());
        accept_queue_.pop_front();
        return s;
    }
    if (ended_) return ended_error("accept stream");
    if (goaway_sent_ || goaway_received_) return fail_errno(EPIPE, "accept stream: the session is going away");
    return fail_errno(ETIMEDOUT, "accept stream: none within {} ms", timeout.count());
}

Result<std::shared_ptr<Stream>> Core::open(const Headers& headers) {
    std::shared_ptr<StreamImpl> s;
    {
        std::lock_guard wl(write_mu_);  // ids must reach the wire in increasing order
        {
            std::lock_guard lk(mu_);
            if (ended_) return ended_error("open stream");
            if (goaway_received_) return fail_errno(EPIPE, "open stream: the peer sent GOAWAY");
            if (next_stream_id_ > kMaxStreamId) return fail("open stream: stream ids exhausted");
            s = std::make_shared<StreamImpl>(shared_from_this(), next_stream_id_, true, headers, windows_.stream);
            next_stream_id_ += 2;
            s->send_window = initial_send_window_;
            streams_[s->id_] = s;
        }
        BERTH_TRY_CTX(write_locked(SynStream{s->id_, 0, 0, 0, 0, headers}), "open stream {}", s->id_);
    }
    std::unique_lock lk(mu_);
    cv_.wait(lk, [&] { return s->replied || s->reset_by != StreamImpl::Reset::none || ended_; });
    if (s->reset_by != StreamImpl::Reset::none)
        return fail_errno(ECONNREFUSED, "open stream {}: refused by the peer with RST_STREAM {}", s->id_,
                          rst_name(s->reset_status));
    if (!s->replied) return ended_error(fmt::format("open stream {}", s->id_));
    return s;
}

Result<std::chrono::microseconds> Core::ping() {
    uint32_t id;
    {
        std::lock_guard lk(mu_);
        if (ended_) return ended_error("ping");
        id = next_ping_id_;
        next_ping_id_ += 2;
        if (next_ping_id_ > kMaxStreamId) next_ping_id_ = role_ == Session::Role::client ? 1 : 2;
    }
    auto t0 = std::chrono::steady_clock::now();
    BERTH_TRY_CTX(send(Ping{id}), "ping");
    std::unique_lock lk(mu_);
    cv_.wait(lk, [&] { return pings_answered_.contains(id) || ended_; });
    if (!pings_answered_.erase(id)) return ended_error("ping");
    return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0);
}

void Core::goaway() {
    uint32_t last;
    {
        std::lock_guard lk(mu_);
        if (goaway_sent_ || ended_) return;
        goaway_sent_ = true;
        last = last_peer_id_;
        cv_.notify_all();
    }
    (void)send(GoAway{last, uint32_t(GoAwayStatus::ok)});
}

// ---- StreamImpl ----

Result<bool> StreamImpl::wait_readable_locked(std::unique_lock<std::mutex>& lk, bool want_none) {
    Core& c = *core_;
    c.cv_.wait(lk, [&] { return buffered > 0 || remote_fin || reset_by != Reset::none || c.ended_ || want_none; });
    if (reset_by == Reset::local) return fail_errno(ECONNRESET, "read stream {}: stream was reset", id_);
    // Data received before the peer's FIN, RST or the session's end is still delivered.
    if (buffered > 0 && !want_none) return true;
    if (remote_fin || want_none) return false;
    if (reset_by == Reset::remote)
        return fail_errno(ECONNRESET, "read stream {}: reset by the peer ({})", id_, rst_name(reset_status));
    return c.ended_error(fmt::format("read stream {}", id_));
}

Result<size_t> StreamImpl::read(std::span<char> buf) {
    Core& c = *core_;
    std::vector<Frame> out;
    size_t n = 0;
    {
        std::unique_lock lk(c.mu_);
        BERTH_ASSIGN(bool data, wait_readable_locked(lk, buf.empty()));
        if (!data) return 0;
        while (n < buf.size() && !chunks.empty()) {
            std::string& front = chunks.front();
            size_t take = std::min(buf.size() - n, front.size() - chunk_off);
            std::memcpy(buf.data() + n, front.data() + chunk_off, take);
            n += take;
            chunk_off += take;
            if (chunk_off == front.size()) {
                chunks.pop_front();
                chunk_off = 0;
            }
        }
        buffered -= n;
        c.grant_locked(this, int64_t(n), out);
        c.cv_.notify_all();  // the reader thread may wait for this stream to drain
    }
    for (const auto& f : out)
        if (!c.send(f)) break;  // the session is over; the data read is still good
    return n;
}

Result<size_t> StreamImpl::read_chunk(std::string& chunk) {
    Core& c = *core_;
    std::vector<Frame> out;
    {
        std::unique_lock lk(c.mu_);
        BERTH_ASSIGN(bool data, wait_readable_locked(lk, false));
        if (!data) {
            chunk.clear();
            return 0;
        }
        // The caller's previous chunk (consumed by now) goes back to the reader for a later payload.
        if (chunk_off == 0) {
            std::swap(chunk, chunks.front());
            c.give_spare_locked(std::move(chunks.front()));
        } else {
            chunk.assign(chunks.front(), chunk_off);
        }
        chunks.pop_front();
        chunk_off = 0;
        buffered -= chunk.size();
        c.grant_locked(this, int64_t(chunk.size()), out);
        c.cv_.notify_all();
    }
    for (const auto& f : out)
        if (!c.send(f)) break;
    return chunk.size();
}

Result<size_t> StreamImpl::reserve(size_t want) {
    Core& c = *core_;
    std::unique_lock lk(c.mu_);
    c.cv_.wait(lk, [&] {
        return reset_by != Reset::none || c.ended_ || local_fin || !c.peer_flow_control_ ||
               (send_window > 0 && c.session_send_window_ > 0);
    });
    if (reset_by != Reset::none)
        return fail_errno(ECONNRESET, "write to stream {}: stream was reset{}", id_,
                          reset_by == Reset::remote ? fmt::format(" by the peer ({})", rst_name(reset_status)) : "");
    if (c.ended_) return c.ended_error(fmt::format("write to stream {}", id_));
    if (local_fin) return fail_errno(EPIPE, "write to stream {}: already closed for writing", id_);
    size_t n = std::min(want, kMaxDataChunk);
    if (c.peer_flow_control_) n = size_t(std::min<int64_t>({int64_t(n), send_window, c.session_send_window_}));
    // Windows are counted even before the peer shows flow control, so they are right if it does later.
    send_window -= int64_t(n);
    c.session_send_window_ -= int64_t(n);
    return n;
}

Result<void> StreamImpl::write(std::span<const char> data) {
    for (size_t off = 0; off < data.size();) {
        BERTH_ASSIGN(size_t n, reserve(data.size() - off));
        BERTH_TRY(core_->send_data(*this, data.subspan(off, n), 0));
        off += n;
    }
    return {};
}

Result<size_t> StreamImpl::write_from(int fd, size_t max) {
    if (max == 0) return 0;
    if (!core_->can_splice()) {
        copy_buf.resize(std::min<size_t>(max, kSplicePipeSize));
        ssize_t n;
        while ((n = ::read(fd, copy_buf.data(), copy_buf.size())) < 0 && errno == EINTR) {
        }
        if (n < 0) return fail_sys("write to stream {}: read from fd {}", id_, fd);
        BERTH_TRY(write(std::span<const char>(copy_buf.data(), size_t(n))));
        return size_t(n);
    }
    if (!splice_r) {
        int p[2];
        if (::pipe2(p, O_CLOEXEC) < 0) return fail_sys("write to stream {}: pipe", id_);
        splice_r.reset(p[0]), splice_w.reset(p[1]);
        (void)::fcntl(p[1], F_SETPIPE_SZ, int(kSplicePipeSize));  // best effort; the default is 64 KiB
    }
    ssize_t got;
    while ((got = ::splice(fd, nullptr, splice_w.get(), nullptr, max, SPLICE_F_MOVE)) < 0 && errno == EINTR) {
    }
    if (got < 0) return fail_sys("write to stream {}: splice from fd {}", id_, fd);
    // What is left in the pipe after a failure belongs to no frame: a later call starts with a fresh pipe.
    auto drop_pipe = [&](Error e) -> std::unexpected<Error> {
        splice_r.reset(), splice_w.reset();
        return std::unexpected(std::move(e));
    };
    for (size_t left = size_t(got); left > 0;) {
        auto n = reserve(left);
        if (!n) return drop_pipe(std::move(n).error());
        if (auto r = core_->send_data_spliced(*this, splice_r.get(), *n); !r) return drop_pipe(std::move(r).error());
        left -= *n;
    }
    return size_t(got);
}

Result<void> StreamImpl::close_write() {
    Core& c = *core_;
    {
        std::lock_guard lk(c.mu_);
        if (local_fin) return {};
        if (reset_by != Reset::none) return fail_errno(ECONNRESET, "close stream {}: stream was reset", id_);
        if (c.ended_) return c.ended_error(fmt::format("close stream {}", id_));
        local_fin = true;
        c.cv_.notify_all();
    }
    BERTH_TRY(c.send_data(*this, {}, kFlagFin));
    std::lock_guard lk(c.mu_);
    if (remote_fin) c.remove_locked(*this);
    return {};
}

void StreamImpl::reset(RstStatus status) {
    Core& c = *core_;
    std::vector<Frame> out;
    {
        std::lock_guard lk(c.mu_);
        if (reset_by != Reset::none) return;
        bool gone = c.ended_ || (local_fin && remote_fin);
        reset_by = Reset::local;
        reset_status = uint32_t(status);
        int64_t dropped = int64_t(buffered);
        chunks.clear();
        chunk_off = 0;
        buffered = 0;
        if (!gone) {
            out.push_back(RstStream{id_, uint32_t(status)});
            c.grant_locked(nullptr, dropped, out);
        }
        c.remove_locked(*this);
        c.cv_.notify_all();
    }
    for (const auto& f : out)
        if (!c.send(f)) break;
}

// ---- Session ----

class SessionImpl final : public Session {
public:
    explicit SessionImpl(std::shared_ptr<Core> core) : core_(std::move(core)) {}
    ~SessionImpl() override {
        core_->end("session closed");
        if (reader_.joinable()) reader_.join();
        core_->release_streams();  // streams hold the core: break the cycle
    }
    void start_reader(std::string buffered) {
        reader_ = std::thread([core = core_, b = std::move(buffered)]() mutable { core->run_reader(std::move(b)); });
    }
    Result<std::shared_ptr<Stream>> accept(std::chrono::milliseconds timeout) override {
        return core_->accept(timeout);
    }
    Result<std::shared_ptr<Stream>> open(const Headers& headers) override { return core_->open(headers); }
    Result<std::chrono::microseconds> ping() override { return core_->ping(); }
    void goaway() override { core_->goaway(); }
    void close() override { core_->end("session closed"); }
    bool closed() const override { return core_->ended(); }
    void wait_closed() override { core_->wait_ended(); }

private:
    std::shared_ptr<Core> core_;
    std::thread reader_;
};

}  // namespace

Result<std::unique_ptr<Session>> Session::start(std::unique_ptr<Conn> conn, Role role, std::string buffered) {
    if (!conn) return fail("spdy session: no connection");
    auto core = std::make_shared<Core>(std::move(conn), role);
    // SETTINGS first: it tells a peer of this implementation that we do flow control (see the top of this file).
    BERTH_TRY_CTX(core->send(Settings{0, {{0, uint32_t(SettingId::initial_window_size), core->windows_.stream}}}),
                  "spdy session: send SETTINGS");
    // The session window can only grow by a WINDOW_UPDATE of stream 0.
    BERTH_TRY_CTX(core->send(WindowUpdate{0, core->windows_.session - kDefaultWindow}),
                  "spdy session: send the session's WINDOW_UPDATE");
    auto session = std::make_unique<SessionImpl>(core);
    session->start_reader(std::move(buffered));
    return session;
}

}  // namespace berth::stream::spdy
