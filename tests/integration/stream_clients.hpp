// Clients of berthd's streaming server for the integration tests: the independent WebSocket client
// (tests/tools/ws_stream_client.py on Debian's python3-websockets) and a SPDY client on src/stream's Session.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/fs.hpp"
#include "stream/protocol.hpp"
#include "stream/spdy.hpp"

namespace berth::test {

inline std::string sha256_hex(std::string_view data) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr);
    std::string out;
    for (unsigned i = 0; i < len; ++i) out += fmt::format("{:02x}", md[i]);
    return out;
}

// "http://h:p/x" -> "ws://h:p/x".
inline std::string ws_url(const std::string& url) {
    return "ws" + url.substr(4);
}

// Runs the python client with `args`; its JSON answer (or {"unparsed": output}).
inline nlohmann::json run_ws_client(const std::vector<std::string>& args) {
    // Debian's interpreter: python3-websockets is installed for it, not for a python3 earlier in $PATH.
    std::string cmd = "/usr/bin/python3 " BERTH_SOURCE_DIR "/tests/tools/ws_stream_client.py";
    for (const auto& a : args) cmd += " '" + a + "'";
    cmd += " 2>&1";
    FILE* f = ::popen(cmd.c_str(), "r");
    if (!f) return nlohmann::json{{"popen", "failed"}};
    std::string out;
    char buf[4096];
    size_t n;
    while ((n = ::fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
    ::pclose(f);
    auto j = nlohmann::json::parse(out, nullptr, false);
    if (j.is_discarded()) return nlohmann::json{{"unparsed", out}};
    return j;
}

struct SpdyClient {
    int status = 0;
    std::string head;  // the HTTP answer (head, and body when refused)
    std::unique_ptr<stream::spdy::Session> session;
};

// Connects to an http://127.0.0.1:PORT/... URL, upgrades to SPDY/3.1 offering `protocols`, starts a client
// session on 101.
inline SpdyClient spdy_connect(const std::string& url, const std::vector<std::string>& protocols) {
    SpdyClient c;
    size_t host_start = url.find("://") + 3;
    size_t path_start = url.find('/', host_start);
    std::string hostport = url.substr(host_start, path_start - host_start);
    uint16_t port = static_cast<uint16_t>(std::stoi(hostport.substr(hostport.rfind(':') + 1)));
    UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) < 0) return c;
    std::string req = "POST " + url.substr(path_start) + " HTTP/1.1\r\nHost: " + hostport +
                      "\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n";
    for (const auto& p : protocols) req += "X-Stream-Protocol-Version: " + p + "\r\n";
    req += "\r\n";
    if (!write_all(fd.get(), req)) return c;
    std::string got;
    char buf[4096];
    size_t end;
    while ((end = got.find("\r\n\r\n")) == std::string::npos) {
        ssize_t n = ::read(fd.get(), buf, sizeof buf);
        if (n <= 0) break;
        got.append(buf, n);
    }
    if (end == std::string::npos) {
        c.head = got;
        return c;
    }
    c.status = std::stoi(got.substr(9, 3));
    if (c.status != 101) {
        for (ssize_t n; (n = ::read(fd.get(), buf, sizeof buf)) > 0;) got.append(buf, n);
        c.head = got;
        return c;
    }
    c.head = got.substr(0, end + 4);
    auto s = stream::spdy::Session::start(stream::plain_conn(std::move(fd)), stream::spdy::Session::Role::client,
                                          got.substr(end + 4));
    if (s) c.session = std::move(*s);
    return c;
}

inline std::shared_ptr<stream::spdy::Stream> spdy_open(stream::spdy::Session& s, std::string_view type,
                                                       stream::spdy::Headers extra = {}) {
    extra.emplace_back(std::string(stream::kStreamTypeHeader), std::string(type));
    auto r = s.open(extra);
    return r ? *r : nullptr;
}

inline std::string spdy_read_all(stream::spdy::Stream& st) {
    std::string out;
    std::vector<char> buf(256 * 1024);
    for (;;) {
        auto n = st.read(std::span<char>(buf.data(), buf.size()));
        if (!n || *n == 0) return out;
        out.append(buf.data(), *n);
    }
}

}  // namespace berth::test
