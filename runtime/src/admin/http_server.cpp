#include "admin/http_server.hpp"

#include <algorithm>

#include "common/thread_name.hpp"

#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <list>
#include <map>
#include <optional>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "admin/http_request_beast.hpp"
#include "admin/status_page.hpp"
#include "common/crash_report.hpp"
#include "common/logging.hpp"

namespace mephisto {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using local = asio::local::stream_protocol;

// Compares without an early exit, so the time taken says nothing about how much of a token matched.
bool same_secret(std::string_view a, std::string_view b) {
    unsigned char diff = a.size() == b.size() ? 0 : 1;
    for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i % (b.empty() ? 1 : b.size())]);
    return diff == 0 && !b.empty();
}

std::string error_body(const std::string& message) {
    std::string escaped;
    for (char c : message) {
        if (c == '"' || c == '\\') escaped.push_back('\\');
        escaped.push_back(c);
    }
    return "{\"error\":\"" + escaped + "\"}\n";
}

// What the server needs of a session, whatever its socket (TCP, or a Unix socket).
class SessionBase {
public:
    virtual ~SessionBase() = default;
    virtual const std::string& peer() const = 0;
    // Still waiting for (the rest of) a request, and not closed: the ones closed to make room.
    virtual bool waiting() const = 0;
    virtual bool evicted() const = 0;
    // Bytes have arrived that the server has not read yet: a client that just sent its request, which must not
    // lose its connection to an attacker's flood of new ones accepted before its bytes were read.
    virtual bool has_unread_bytes() = 0;
    virtual void evict() = 0;
};

}  // namespace

struct HttpServer::Impl {
    // Declared before io: io's destructor destroys pending sessions, which still count themselves out here.
    std::atomic<int> connections{0};
    std::shared_ptr<spdlog::logger> log = logger("admin");
    std::string token;
    HttpLimits limits;
    Handler handler;
    // The open sessions, oldest first (the io thread only).
    std::list<std::weak_ptr<SessionBase>> sessions;
    asio::io_context io{1};
    tcp::acceptor acceptor{io};
    local::acceptor local_acceptor{io};  // listen_unix: instead of the TCP acceptor
    std::string socket_path;             // listen_unix: removed when the server stops

    void accept();
    void accept_local();
    void close_acceptors();
    // Makes room for a connection from `peer`; false when every connection in the way is busy with a request.
    bool make_room(const std::string& peer);
};

namespace {

template <class Protocol>
class Session : public SessionBase, public std::enable_shared_from_this<Session<Protocol>> {
public:
    using Socket = typename Protocol::socket;
    Session(Socket socket, HttpServer::Impl& server, std::string peer)
        : stream_(std::move(socket)), server_(server), peer_(std::move(peer)) {
        server_.connections++;
    }
    ~Session() override { server_.connections--; }

    const std::string& peer() const override { return peer_; }
    bool waiting() const override { return waiting_ && !evicted_; }
    bool evicted() const override { return evicted_; }
    bool has_unread_bytes() override {
        beast::error_code ec;
        return stream_.socket().available(ec) > 0 && !ec;
    }
    void evict() override {
        evicted_ = true;
        beast::error_code ignored;
        stream_.socket().shutdown(Socket::shutdown_both, ignored);
        stream_.socket().close(ignored);  // the pending read ends with operation_aborted
    }

    void read() {
        waiting_ = true;
        parser_.emplace();
        apply_limits(*parser_, server_.limits);
        stream_.expires_after(std::chrono::seconds(server_.limits.read_timeout_seconds));
        http::async_read(stream_, buffer_, *parser_,
                         [self = this->shared_from_this()](beast::error_code ec, size_t) { self->on_read(ec); });
    }

private:
    void on_read(beast::error_code ec) {
        waiting_ = false;
        if (evicted_) return;
        if (ec == http::error::end_of_stream) return close();
        if (ec == beast::error::timeout || ec == asio::error::operation_aborted) return close();
        if (auto refused = refusal_of(ec)) return reply(refused->first, error_body(refused->second), false);
        if (ec) return close();  // the peer went away
        handle(parser_->release());
    }

    void handle(http::request<http::string_body> req) {
        keep_alive_ = req.keep_alive();
        // The status page's files (admin/status_page.hpp) hold no data: served to anyone, before the token.
        if (req.method() == http::verb::get || req.method() == http::verb::head) {
            const std::string_view target(req.target().data(), req.target().size());
            if (auto file = status_page_file(percent_decode(target.substr(0, target.find('?'))))) {
                res_ = {};
                res_.result(http::status::ok);
                res_.set(http::field::content_type, file->content_type);
                res_.set(http::field::server, "mephisto");
                for (const auto& [name, value] : file->headers) res_.set(name, value);
                res_.body() = req.method() == http::verb::head ? std::string() : std::move(file->body);
                return send(keep_alive_);
            }
        }
        if (!server_.token.empty()) {
            const auto auth = req[http::field::authorization];
            const auto given = bearer_token(std::string_view(auth.data(), auth.size()));
            if (!given || !same_secret(*given, server_.token))
                return reply(401, error_body("a bearer token is required (Authorization: Bearer <token>)"),
                             keep_alive_, true);
        }
        const HttpRequest request = to_request(std::move(req));
        HttpResponse response;
        try {
            response = server_.handler(request);
        } catch (const std::exception& e) {
            server_.log->error("{} {}: {}", request.method, request.target, e.what());
            response = HttpResponse{500, "application/json", error_body(e.what())};
        }
        res_ = {};
        res_.result(static_cast<http::status>(response.status));
        res_.set(http::field::content_type, response.content_type);
        res_.set(http::field::server, "mephisto");
        for (const auto& [name, value] : response.headers)  // a value may come from another host: no control bytes
            if (std::none_of(value.begin(), value.end(), [](unsigned char c) { return c < 0x20 || c == 0x7f; }))
                res_.set(name, value);
        res_.body() = std::move(response.body);
        send(keep_alive_);
    }

    void reply(int status, std::string body, bool keep_alive, bool challenge = false) {
        res_ = {};
        res_.result(static_cast<http::status>(status));
        res_.set(http::field::content_type, "application/json");
        res_.set(http::field::server, "mephisto");
        if (challenge) res_.set(http::field::www_authenticate, "Bearer");
        res_.body() = std::move(body);
        send(keep_alive);
    }

    void send(bool keep_alive) {
        res_.version(11);
        res_.keep_alive(keep_alive);
        res_.prepare_payload();
        stream_.expires_after(std::chrono::seconds(server_.limits.read_timeout_seconds));
        http::async_write(stream_, res_, [self = this->shared_from_this(), keep_alive](beast::error_code ec, size_t) {
            if (ec || !keep_alive) return self->close();
            self->read();
        });
    }

    void close() {
        beast::error_code ignored;
        stream_.socket().shutdown(Socket::shutdown_send, ignored);
    }

    beast::basic_stream<Protocol> stream_;
    beast::flat_buffer buffer_;
    HttpServer::Impl& server_;
    std::string peer_;
    std::optional<BeastParser> parser_;
    http::response<http::string_body> res_;
    bool keep_alive_ = false;
    bool waiting_ = false;
    bool evicted_ = false;
};

}  // namespace

bool HttpServer::Impl::make_room(const std::string& peer) {
    std::map<std::string, int> open;  // live sessions by peer
    int total = 0;
    for (auto it = sessions.begin(); it != sessions.end();) {
        auto s = it->lock();
        if (!s || s->evicted()) {
            it = sessions.erase(it);
            continue;
        }
        ++open[s->peer()];
        ++total;
        ++it;
    }
    // Over the peer's share, one of its own goes; over the total, one of the peer holding the most.
    std::string from;
    if (open[peer] >= limits.max_connections_per_peer) {
        from = peer;
    } else if (total >= limits.max_connections) {
        int most = 0;
        for (const auto& [address, n] : open) {
            bool has_waiting = false;
            for (const auto& weak : sessions)
                if (auto s = weak.lock(); s && s->peer() == address && s->waiting()) has_waiting = true;
            if (has_waiting && n > most) {
                most = n;
                from = address;
            }
        }
        if (from.empty()) return false;
    } else {
        return true;
    }
    // The oldest idle one first: one whose request has arrived unread is spared while there is another.
    for (const bool spare_unread : {true, false})
        for (const auto& weak : sessions)
            if (auto s = weak.lock(); s && s->peer() == from && s->waiting() && !(spare_unread && s->has_unread_bytes())) {
                s->evict();
                return true;
            }
    return false;
}

void HttpServer::Impl::accept() {
    acceptor.async_accept([this](beast::error_code ec, tcp::socket socket) {
        if (ec == asio::error::operation_aborted || !acceptor.is_open()) return;
        if (!ec) {
            beast::error_code peer_ec;
            const auto remote = socket.remote_endpoint(peer_ec);
            const std::string peer = peer_ec ? std::string("?") : remote.address().to_string();
            if (!make_room(peer)) {
                beast::error_code ignored;
                socket.close(ignored);  // every connection in the way is serving a request: refused for now
            } else {
                auto session = std::make_shared<Session<tcp>>(std::move(socket), *this, peer);
                sessions.push_back(session);
                session->read();
            }
        }
        accept();
    });
}

// A Unix socket's clients are all one peer: the file's permissions decide who may connect.
void HttpServer::Impl::accept_local() {
    local_acceptor.async_accept([this](beast::error_code ec, local::socket socket) {
        if (ec == asio::error::operation_aborted || !local_acceptor.is_open()) return;
        if (!ec) {
            if (!make_room("local")) {
                beast::error_code ignored;
                socket.close(ignored);
            } else {
                auto session = std::make_shared<Session<local>>(std::move(socket), *this, "local");
                sessions.push_back(session);
                session->read();
            }
        }
        accept_local();
    });
}

void HttpServer::Impl::close_acceptors() {
    beast::error_code ignored;
    acceptor.close(ignored);
    local_acceptor.close(ignored);
    if (!socket_path.empty()) ::unlink(socket_path.c_str());
}

Result<std::unique_ptr<HttpServer>> HttpServer::start(const std::string& listen, std::string token, HttpLimits limits,
                                                      Handler handler) {
    const auto colon = listen.rfind(':');
    if (colon == std::string::npos) return make_error("admin: '" + listen + "' is not host:port");
    std::string host = listen.substr(0, colon);
    if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    int port = -1;
    try {
        size_t used = 0;
        port = std::stoi(listen.substr(colon + 1), &used);
        if (used != listen.size() - colon - 1) port = -1;
    } catch (const std::exception&) {
    }
    if (port < 0 || port > 65535) return make_error("admin: '" + listen + "' has no valid port");
    beast::error_code ec;
    const auto address = asio::ip::make_address(host, ec);
    if (ec) return make_error("admin: '" + host + "' is not an IP address");

    std::unique_ptr<HttpServer> server(new HttpServer());
    server->impl_ = std::make_unique<Impl>();
    Impl& impl = *server->impl_;
    impl.token = std::move(token);
    impl.limits = limits;
    impl.handler = std::move(handler);
    const tcp::endpoint endpoint(address, static_cast<unsigned short>(port));
    impl.acceptor.open(endpoint.protocol(), ec);
    if (!ec) impl.acceptor.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) impl.acceptor.bind(endpoint, ec);
    if (!ec) impl.acceptor.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) return make_error("admin: cannot listen on " + listen + ": " + ec.message());
    const auto bound = impl.acceptor.local_endpoint();
    server->address_ = (bound.address().is_v6() ? "[" + bound.address().to_string() + "]" : bound.address().to_string()) +
                       ":" + std::to_string(bound.port());
    impl.accept();
    server->run();
    return server;
}

Result<std::unique_ptr<HttpServer>> HttpServer::listen_unix(const std::filesystem::path& path, HttpLimits limits,
                                                            Handler handler) {
    // sun_path holds 107 bytes and a NUL: a longer path would be cut, and another file bound.
    if (path.native().size() >= sizeof(sockaddr_un::sun_path))
        return make_error("admin: the socket path " + path.string() + " is longer than a Unix socket allows (" +
                          std::to_string(sizeof(sockaddr_un::sun_path) - 1) + " bytes); use a shorter state_dir");
    std::unique_ptr<HttpServer> server(new HttpServer());
    server->impl_ = std::make_unique<Impl>();
    Impl& impl = *server->impl_;
    impl.limits = limits;
    impl.handler = std::move(handler);
    ::unlink(path.c_str());  // a socket left by a process that died: nobody listens there
    beast::error_code ec;
    const local::endpoint endpoint(path.string());
    impl.local_acceptor.open(endpoint.protocol(), ec);
    if (!ec) impl.local_acceptor.bind(endpoint, ec);
    // Only the owner may connect. (Not through umask, which is the whole process's: the directory the socket is
    // made in is the caller's to keep private, and closes the moment between bind and chmod.)
    if (!ec && ::chmod(path.c_str(), 0600) != 0) ec.assign(errno, boost::system::system_category());
    if (!ec) impl.local_acceptor.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) return make_error("admin: cannot listen on " + path.string() + ": " + ec.message());
    impl.socket_path = path.string();
    server->address_ = "unix:" + path.string();
    impl.accept_local();
    server->run();
    return server;
}

void HttpServer::run() {
    Impl& impl = *impl_;
    thread_ = std::thread([&impl] {
        name_this_thread("admin");
        crash_report::prepare_thread();  // POST /reload loads plugins on this thread
        impl.io.run();
    });
}

void HttpServer::stop() {
    if (!impl_) return;
    asio::post(impl_->io, [this] {
        impl_->close_acceptors();
        impl_->io.stop();
    });
    if (thread_.joinable()) thread_.join();
}

HttpServer::~HttpServer() { stop(); }

}  // namespace mephisto
