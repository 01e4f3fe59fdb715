#pragma once
// Rillflow speaks JSON through Boost.JSON: anything boost::json::value_from accepts can be an
// event body or a document (including structs described with BOOST_DESCRIBE_STRUCT).

#include <boost/json.hpp>

#include <exception>
#include <string_view>
#include <type_traits>
#include <typeinfo>

namespace rillflow {

using Json = boost::json::value;

/// Parses JSON text; malformed text is a rillflow::Error (kInvalidArgument) that says where.
Json parse_json(std::string_view text);

namespace detail {
/// Throws rillflow::Error (kInvalidArgument): a JSON value did not convert to the C++ type.
[[noreturn]] void throw_json_conversion(const char* type_name, const std::exception& cause);
}  // namespace detail

/// `value` as JSON: a Json passes through, anything else goes through boost::json::value_from.
template <class T>
Json json_from(const T& value) {
  if constexpr (std::is_constructible_v<Json, const T&>) {
    return Json(value);
  } else {
    return boost::json::value_from(value);
  }
}

/// `json` as a T through boost::json::value_to; a mismatch is a rillflow::Error
/// (kInvalidArgument) naming the type, never a Boost exception.
template <class T>
T json_to(const Json& json) {
  if constexpr (std::is_same_v<T, Json>) {
    return json;
  } else {
    try {
      return boost::json::value_to<T>(json);
    } catch (const std::exception& e) {
      detail::throw_json_conversion(typeid(T).name(), e);
    }
  }
}

}  // namespace rillflow
