#include <rillflow/error.hpp>
#include <rillflow/json.hpp>
#include <rillflow/uuid.hpp>
#include <rillflow/version.hpp>

#include <boost/uuid/random_generator.hpp>
#include <boost/uuid/uuid_io.hpp>

#include <cxxabi.h>

#include <array>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdlib>

namespace rillflow {

Uuid new_uuid() {
  thread_local boost::uuids::random_generator generator;
  return generator();
}

namespace {

// Hex digit values, and 0x10 (an invalid digit) for every other byte.
constexpr std::array<std::uint8_t, 256> kHexDigits = [] {
  std::array<std::uint8_t, 256> t{};
  t.fill(0x10);
  for (int c = 0; c < 10; ++c) t['0' + c] = static_cast<std::uint8_t>(c);
  for (int c = 0; c < 6; ++c) {
    t['a' + c] = static_cast<std::uint8_t>(10 + c);
    t['A' + c] = static_cast<std::uint8_t>(10 + c);
  }
  return t;
}();

// Where each of the 16 bytes' two digits start in the 36-character form.
constexpr std::array<std::uint8_t, 16> kByteOffsets = {0,  2,  4,  6,  9,  11, 14, 16,
                                                       19, 21, 24, 26, 28, 30, 32, 34};

}  // namespace

Uuid parse_uuid(std::string_view text) {
  // Branch-free over the canonical form (this is on the feed's hot path): the OR of every
  // digit's value has bit 4 set when any digit was not hex.
  Uuid id{};
  bool ok =
      text.size() == 36 && text[8] == '-' && text[13] == '-' && text[18] == '-' && text[23] == '-';
  if (ok) {
    unsigned bad = 0;
    for (std::size_t b = 0; b < 16; ++b) {
      const unsigned hi = kHexDigits[static_cast<unsigned char>(text[kByteOffsets[b]])];
      const unsigned lo = kHexDigits[static_cast<unsigned char>(text[kByteOffsets[b] + 1])];
      bad |= hi | lo;
      id.data[b] = static_cast<std::uint8_t>(hi << 4 | lo);
    }
    ok = (bad & 0x10) == 0;
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

namespace {

std::string where(std::string_view text, std::size_t offset) {
  std::size_t line = 1, column = 1;
  for (std::size_t i = 0; i < offset && i < text.size(); ++i) {
    if (text[i] == '\n') {
      ++line;
      column = 1;
    } else if ((static_cast<unsigned char>(text[i]) & 0xC0) != 0x80) {
      ++column;  // columns count characters, not UTF-8 continuation bytes
    }
  }
  return "line " + std::to_string(line) + ", column " + std::to_string(column);
}

[[noreturn]] void refuse(std::string_view text, std::size_t offset, const std::string& why) {
  throw Error(ErrorCode::kInvalidArgument, "malformed JSON at " + where(text, offset) + ": " + why);
}

// Numbers must come back as written: an integer beyond 64 bits or a decimal beyond a double's
// range or precision would be silently changed, so it is refused.
void check_number(std::string_view text, std::size_t start, std::string_view token) {
  const std::string shown(token.substr(0, 40));
  const bool integer = token.find_first_of(".eE") == std::string_view::npos;
  if (integer) {
    std::int64_t i = 0;
    std::uint64_t u = 0;
    const auto* end = token.data() + token.size();
    if (std::from_chars(token.data(), end, i).ec == std::errc() ||
        std::from_chars(token.data(), end, u).ec == std::errc()) {
      return;
    }
    refuse(text, start,
           "the integer " + shown + " does not fit 64 bits (send it as a string to keep it exact)");
  }
  std::size_t digits = 0;
  bool leading = true, nonzero = false;
  std::string mantissa;
  for (const char c : token.substr(0, token.find_first_of("eE"))) {
    if (c < '0' || c > '9') continue;
    if (leading && c == '0') continue;
    leading = false;
    mantissa += c;
    nonzero = nonzero || c != '0';
  }
  while (!mantissa.empty() && mantissa.back() == '0') mantissa.pop_back();
  digits = mantissa.size();
  if (digits > 17) {
    refuse(text, start,
           "the number " + shown +
               " has more significant digits than a double holds (send it as a string)");
  }
  errno = 0;
  const std::string copy(token);
  const double d = std::strtod(copy.c_str(), nullptr);
  if (errno == ERANGE || !std::isfinite(d) || (d == 0 && nonzero)) {
    refuse(text, start, "the number " + shown + " is beyond the range of a double");
  }
}

void check_numbers(std::string_view text) {
  for (std::size_t i = 0; i < text.size();) {
    const char c = text[i];
    if (c == '"') {
      for (++i; i < text.size() && text[i] != '"'; ++i) {
        if (text[i] == '\\') ++i;
      }
      ++i;
    } else if (c == '-' || (c >= '0' && c <= '9')) {
      const std::size_t start = i;
      while (i < text.size() &&
             (std::isdigit(static_cast<unsigned char>(text[i])) != 0 || text[i] == '-' ||
              text[i] == '+' || text[i] == '.' || text[i] == 'e' || text[i] == 'E')) {
        ++i;
      }
      check_number(text, start, text.substr(start, i - start));
    } else {
      ++i;
    }
  }
}

bool holds_nul(const Json& v) {
  switch (v.kind()) {
    case boost::json::kind::string:
      return v.get_string().find('\0') != boost::json::string::npos;
    case boost::json::kind::array:
      for (const auto& e : v.get_array()) {
        if (holds_nul(e)) return true;
      }
      return false;
    case boost::json::kind::object:
      for (const auto& [k, e] : v.get_object()) {
        if (k.find('\0') != boost::json::string_view::npos || holds_nul(e)) return true;
      }
      return false;
    default:
      return false;
  }
}

}  // namespace

Json parse_json(std::string_view text) {
  boost::system::error_code ec;
  boost::json::stream_parser parser;
  const std::size_t used = parser.write(text.data(), text.size(), ec);
  if (!ec) parser.finish(ec);
  if (ec) {
    std::string why = ec.message();
    const auto rest = text.substr(std::min(used, text.size()));
    if (rest.starts_with("Infinity") || rest.starts_with("-Infinity") || rest.starts_with("NaN")) {
      why = "Infinity and NaN are not JSON numbers";
    } else if (!rest.empty() && (static_cast<unsigned char>(rest.front()) >= 0x80)) {
      why += " (invalid UTF-8?)";
    }
    refuse(text, used, why);
  }
  Json value = parser.release();
  check_numbers(text);
  if (holds_nul(value)) {
    const auto at = text.find("\\u0000");
    refuse(text, at == std::string_view::npos ? 0 : at,
           "\\u0000 is not allowed in strings (PostgreSQL's jsonb cannot store it)");
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
