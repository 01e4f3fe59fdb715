#include <rillflow/error.hpp>
#include <rillflow/json.hpp>
#include <rillflow/uuid.hpp>
#include <rillflow/version.hpp>

#include <boost/uuid/random_generator.hpp>
#include <boost/uuid/uuid_io.hpp>

#include <cxxabi.h>

#include <cstdlib>

namespace rillflow {

Uuid new_uuid() {
  thread_local boost::uuids::random_generator generator;
  return generator();
}

namespace {
int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}
}  // namespace

Uuid parse_uuid(std::string_view text) {
  // One pass over the canonical form (this is on the feed's hot path).
  Uuid id{};
  bool ok = text.size() == 36;
  std::size_t byte = 0;
  for (std::size_t i = 0; ok && i < 36; ++i) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      ok = text[i] == '-';
      continue;
    }
    const int hi = hex_value(text[i]);
    const int lo = hex_value(text[++i]);
    ok = hi >= 0 && lo >= 0;
    id.data[byte++] = static_cast<std::uint8_t>(hi << 4 | lo);
  }
  if (!ok) {
    throw Error(ErrorCode::kInvalidArgument,
                "not a UUID: '" + std::string(text.substr(0, 64)) +
                    "' (expected the 36-character form xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)");
  }
  return id;
}

std::string to_string(const Uuid& id) {
  return boost::uuids::to_string(id);
}

Json parse_json(std::string_view text) {
  boost::system::error_code ec;
  Json value = boost::json::parse(text, ec);
  if (ec) {
    throw Error(ErrorCode::kInvalidArgument, "malformed JSON: " + ec.message());
  }
  return value;
}

namespace detail {
void throw_json_conversion(const char* type_name, const std::exception& cause) {
  int status = 0;
  char* demangled = abi::__cxa_demangle(type_name, nullptr, nullptr, &status);
  const std::string name = status == 0 && demangled != nullptr ? demangled : type_name;
  std::free(demangled);
  throw Error(ErrorCode::kInvalidArgument,
              "JSON value does not convert to " + name + ": " + cause.what());
}
}  // namespace detail

const char* version() noexcept {
  return RILLFLOW_VERSION_STRING;
}

}  // namespace rillflow
