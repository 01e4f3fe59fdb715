#include "http/http_server.hpp"

#include <rillflow/error.hpp>

#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <chrono>

namespace rillflow::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;

namespace {

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, std::shared_ptr<Handler> handler)
      : stream_(std::move(socket)), handler_(std::move(handler)) {}

  void read() {
    request_ = {};
    stream_.expires_after(std::chrono::seconds(30));
    bhttp::async_read(
        stream_, buffer_, request_,
        [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_read(ec); });
  }

 private:
  void on_read(beast::error_code ec) {
    if (ec) {
      stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
      return;
    }
    const auto routed = (*handler_)(
        std::string_view(request_.method_string().data(), request_.method_string().size()),
        std::string_view(request_.target().data(), request_.target().size()));
    response_ = {};
    response_.version(request_.version());
    response_.result(routed.status);
    response_.set(bhttp::field::server, "rillflowd");
    response_.set(bhttp::field::content_type, routed.content_type);
    response_.set(bhttp::field::cache_control, "no-store");
    for (const auto& [name, value] : routed.headers) response_.set(name, value);
    response_.keep_alive(request_.keep_alive());
    if (request_.method() != bhttp::verb::head) response_.body() = routed.body;
    response_.prepare_payload();
    bhttp::async_write(stream_, response_,
                       [self = shared_from_this()](beast::error_code wec, std::size_t) {
                         if (!wec && self->response_.keep_alive()) {
                           self->read();
                         } else {
                           self->stream_.socket().shutdown(tcp::socket::shutdown_send, wec);
                         }
                       });
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  bhttp::request<bhttp::string_body> request_;
  bhttp::response<bhttp::string_body> response_;
  std::shared_ptr<Handler> handler_;
};

}  // namespace

HttpServer::HttpServer(asio::io_context& loop, const std::string& bind, unsigned short port,
                       Handler handler)
    : acceptor_(loop), handler_(std::make_shared<Handler>(std::move(handler))) {
  beast::error_code ec;
  const auto address = asio::ip::make_address(bind, ec);
  if (ec) throw ConfigError("http.bind", "not an IP address: '" + bind + "'");
  const tcp::endpoint endpoint(address, port);
  acceptor_.open(endpoint.protocol(), ec);
  if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(endpoint, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    throw Error(ErrorCode::kInvalidArgument, "cannot listen on " + bind + ":" +
                                                 std::to_string(port) + ": " + ec.message() +
                                                 " (http.bind / http.port)");
  }
  port_ = acceptor_.local_endpoint().port();
  accept();
}

HttpServer::~HttpServer() {
  stop();
}

void HttpServer::stop() {
  beast::error_code ignored;
  acceptor_.close(ignored);
}

void HttpServer::accept() {
  acceptor_.async_accept([this](beast::error_code ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted || !acceptor_.is_open()) return;
    if (!ec) std::make_shared<Session>(std::move(socket), handler_)->read();
    accept();
  });
}

}  // namespace rillflow::http
