#include <rillflow/error.hpp>
#include <rillflow/json.hpp>
#include <rillflow/uuid.hpp>
#include <rillflow/version.hpp>

#include <boost/uuid/random_generator.hpp>
#include <boost/uuid/string_generator.hpp>
#include <boost/uuid/uuid_io.hpp>

#include <cxxabi.h>

#include <cstdlib>

namespace rillflow {

Uuid new_uuid() {
  thread_local boost::uuids::random_generator generator;
  return generator();
}

Uuid parse_uuid(std::string_view text) {
  // string_generator accepts braces and missing dashes; insist on the canonical form.
  bool canonical = text.size() == 36;
  for (std::size_t i = 0; canonical && i < text.size(); ++i) {
    const char c = text[i];
    canonical = (i == 8 || i == 13 || i == 18 || i == 23)
                    ? c == '-'
                    : std::isxdigit(static_cast<unsigned char>(c)) != 0;
  }
  if (!canonical) {
    throw Error(ErrorCode::kInvalidArgument,
                "not a UUID: '" + std::string(text.substr(0, 64)) +
                    "' (expected the 36-character form xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)");
  }
  return boost::uuids::string_generator()(text.begin(), text.end());
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
