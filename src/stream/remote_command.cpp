#include "stream/remote_command.hpp"

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "common/log.hpp"
#include "stream/protocol.hpp"

namespace berth::stream {
namespace {

// How long the end of a command waits for the client to answer the close before the connection is cut.
constexpr auto kCloseGrace = std::chrono::seconds(5);

std::string join_command(const std::vector<std::string>& cmd) {
    std::string out = "[";
    for (size_t i = 0; i < cmd.size(); ++i) {
        if (i) out += ' ';
        out += cmd[i];
    }
    return out + "]";
}

class ExecTarget final : public CommandTarget {
public:
    ExecTarget(std::unique_ptr<cri::ExecSession> s, std::vector<std::string> cmd, std::atomic<uint64_t>* live)
        : session_(std::move(s)), cmd_(std::move(cmd)), live_(live) {
        if (live_) live_->fetch_add(1);
    }
    ~ExecTarget() override {
        session_.reset();  // kills a process still running and reaps it
        if (live_) live_->fetch_sub(1);
    }
    Result<cri::OutputChunk> read() override { return session_->read(); }
    Result<void> write_stdin(std::span<const char> data) override { return session_->write_stdin(data); }
    void close_stdin() override { session_->close_stdin(); }
    Result<void> resize(uint16_t w, uint16_t h) override { return session_->resize(w, h); }
    Result<int> finish() override { return session_->wait(); }
    void abandon() override { session_->kill(); }
    std::string describe() const override { return "command " + join_command(cmd_); }

private:
    std::unique_ptr<cri::ExecSession> session_;
    std::vector<std::string> cmd_;
    std::atomic<uint64_t>* live_;
};

class AttachTarget final : public CommandTarget {
public:
    AttachTarget(std::unique_ptr<cri::AttachSession> s, std::string id, std::atomic<uint64_t>* live)
        : session_(std::move(s)), id_(std::move(id)), live_(live) {
        if (live_) live_->fetch_add(1);
    }
    ~AttachTarget() override {
        session_.reset();  // detaches
        if (live_) live_->fetch_sub(1);
    }
    Result<cri::OutputChunk> read() override { return session_->read(); }
    Result<void> write_stdin(std::span<const char> data) override { return session_->write_stdin(data); }
    void close_stdin() override { session_->close_stdin(); }
    Result<void> resize(uint16_t w, uint16_t h) override { return session_->resize(w, h); }
    Result<int> finish() override { return 0; }
    void abandon() override { session_->cancel(); }
    std::string describe() const override { return "attach to container " + id_; }

private:
    std::unique_ptr<cri::AttachSession> session_;
    std::string id_;
    std::atomic<uint64_t>* live_;
};

// The client's input into the target: stdin only when asked for, resizes only with a tty; a failing stdin write
// (the process closed its stdin or exited) drops the rest of the input, as kubelet's copy does.
class InputBridge final : public CommandInput {
public:
    InputBridge(CommandTarget& t, const CommandStreams& s) : target_(t), streams_(s) {}

    void on_stdin(std::span<const char> data) override {
        if (!streams_.stdin || stdin_done_) return;
        if (auto r = target_.write_stdin(data); !r) {
            log::debug("streaming: stdin dropped: {}", r.error().message());
            stdin_done_ = true;
        }
    }
    void on_stdin_eof() override {
        if (!streams_.stdin || eof_sent_) return;
        eof_sent_ = true;
        target_.close_stdin();
    }
    void on_resize_bytes(std::string_view bytes) override {
        if (!streams_.tty || resize_broken_) return;
        auto sizes = decoder_.feed(bytes);
        if (!sizes) {
            log::debug("streaming: resize stream ignored: {}", sizes.error().message());
            resize_broken_ = true;
            return;
        }
        for (const auto& s : *sizes)
            if (auto r = target_.resize(s.width, s.height); !r)
                log::debug("streaming: resize {}x{}: {}", s.width, s.height, r.error().message());
    }

private:
    CommandTarget& target_;
    CommandStreams streams_;
    ResizeDecoder decoder_;
    bool stdin_done_ = false;
    bool eof_sent_ = false;
    bool resize_broken_ = false;
};

}  // namespace

std::optional<CommandVersion> command_version(std::string_view name) {
    if (name == kRemoteCommandV1) return CommandVersion::v1;
    if (name == kRemoteCommandV2) return CommandVersion::v2;
    if (name == kRemoteCommandV3) return CommandVersion::v3;
    if (name == kRemoteCommandV4) return CommandVersion::v4;
    if (name == kRemoteCommandV5) return CommandVersion::v5;
    return std::nullopt;
}

std::unique_ptr<CommandTarget> exec_target(std::unique_ptr<cri::ExecSession> session, std::vector<std::string> cmd,
                                           std::atomic<uint64_t>* live) {
    return std::make_unique<ExecTarget>(std::move(session), std::move(cmd), live);
}

std::unique_ptr<CommandTarget> attach_target(std::unique_ptr<cri::AttachSession> session, std::string container_id,
                                             std::atomic<uint64_t>* live) {
    return std::make_unique<AttachTarget>(std::move(session), std::move(container_id), live);
}

std::string command_status(CommandVersion version, const Result<int>& result, std::string_view command) {
    std::string message;
    if (!result)
        message = fmt::format("error executing {} in container: {}", command, result.error().message());
    else if (*result != 0)
        message = fmt::format("command terminated with non-zero exit code: error executing {}, exit code {}", command,
                              *result);
    if (version < CommandVersion::v4) return message;  // v1-v3: the failure's text, nothing on success

    // A metav1.Status as kubelet writes it; "metadata":{} is what Go's encoder writes for the empty ListMeta.
    nlohmann::ordered_json status = {{"metadata", nlohmann::json::object()}};
    if (result && *result == 0) {
        status["status"] = "Success";
    } else if (result) {
        status["status"] = "Failure";
        status["message"] = message;
        status["reason"] = "NonZeroExitCode";
        status["details"] = {{"causes", {{{"reason", "ExitCode"}, {"message", std::to_string(*result)}}}}};
    } else {
        status["status"] = "Failure";
        status["message"] = "Internal error occurred: " + message;
        status["reason"] = "InternalError";
        status["details"] = {{"causes", {{{"message", message}}}}};
        status["code"] = 500;
    }
    return status.dump();
}

Result<std::vector<ResizeDecoder::Size>> ResizeDecoder::feed(std::string_view bytes) {
    std::vector<Size> out;
    for (char c : bytes) {
        if (depth_ == 0) {
            if (c == ' ' || c == '\n' || c == '\r' || c == '\t') continue;
            if (c != '{') return fail("resize stream: expected a JSON object, got byte 0x{:02x}", c);
        }
        pending_ += c;
        if (pending_.size() > 4096) return fail("resize stream: JSON object longer than 4096 bytes");
        if (in_string_) {
            if (escaped_)
                escaped_ = false;
            else if (c == '\\')
                escaped_ = true;
            else if (c == '"')
                in_string_ = false;
            continue;
        }
        if (c == '"') {
            in_string_ = true;
        } else if (c == '{' || c == '[') {
            ++depth_;
        } else if (c == '}' || c == ']') {
            if (--depth_ == 0) {
                auto j = nlohmann::json::parse(pending_, nullptr, false);
                pending_.clear();
                if (j.is_discarded() || !j.is_object()) return fail("resize stream: invalid JSON object");
                auto dim = [&](const char* key) -> Result<uint16_t> {
                    auto it = j.find(key);
                    if (it == j.end()) return uint16_t{0};  // Go decodes a missing field as 0
                    if (!it->is_number_unsigned() || it->get<uint64_t>() > 0xffff)
                        return fail("resize stream: {} is not a 16-bit unsigned number", key);
                    return it->get<uint16_t>();
                };
                BERTH_ASSIGN(uint16_t w, dim("Width"));
                BERTH_ASSIGN(uint16_t h, dim("Height"));
                out.push_back({w, h});
            }
        }
    }
    return out;
}

void run_remote_command(CommandTransport& transport, CommandTarget& target, CommandVersion version,
                        const CommandStreams& streams) {
    InputBridge input(target, streams);
    std::mutex mu;
    std::condition_variable cv;
    bool input_done = false;
    std::atomic<bool> ending = false;
    std::thread input_thread([&] {
        transport.run_input(input);
        // The client's side ended before the command did: it went away.
        if (!ending.load()) {
            target.abandon();
            transport.abort();
        }
        std::lock_guard lock(mu);
        input_done = true;
        cv.notify_all();
    });

    Result<int> result = 0;
    bool client_gone = false;
    for (;;) {
        auto chunk = target.read();
        if (!chunk) {
            result = std::unexpected(chunk.error());
            break;
        }
        if (chunk->data.empty()) break;
        int stream = streams.tty ? 1 : chunk->stream;
        if ((stream == 1 && !streams.stdout) || (stream == 2 && !streams.stderr)) continue;
        if (!transport.write_output(stream, chunk->data)) {
            client_gone = true;
            break;
        }
    }
    if (client_gone) {
        target.abandon();
        transport.abort();
    } else if (result) {
        result = target.finish();
    }
    ending = true;
    if (!client_gone) {
        if (auto r = transport.write_error(command_status(version, result, target.describe())); !r)
            log::debug("streaming: error stream: {}", r.error().message());
        transport.end();
    }
    {
        std::unique_lock lock(mu);
        if (!cv.wait_for(lock, kCloseGrace, [&] { return input_done; })) {
            lock.unlock();
            transport.abort();
        }
    }
    input_thread.join();
}

}  // namespace berth::stream
