#pragma once
// The Beast HTTP/1.1 server: accepts on the loop, reads a request, asks the handler (a pure
// function, see routes.hpp), writes the response. Only moves bytes.

#include "http/routes.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <functional>
#include <memory>
#include <string>

namespace rillflow::http {

using Handler = std::function<Response(std::string_view method, std::string_view target)>;

class HttpServer {
 public:
  /// Binds and listens at once; throws rillflow::Error when the address is taken or invalid.
  HttpServer(boost::asio::io_context& loop, const std::string& bind, unsigned short port,
             Handler handler);
  ~HttpServer();
  unsigned short port() const { return port_; }
  void stop();

 private:
  void accept();

  boost::asio::ip::tcp::acceptor acceptor_;
  std::shared_ptr<Handler> handler_;
  unsigned short port_ = 0;
};

}  // namespace rillflow::http
