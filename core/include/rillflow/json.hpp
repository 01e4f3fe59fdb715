#pragma once
// Rillflow speaks JSON through Boost.JSON: anything boost::json::value_from accepts can be an
// event body or a document (including structs described with BOOST_DESCRIBE_STRUCT).

#include <boost/describe.hpp>
#include <boost/json.hpp>
#include <boost/mp11/algorithm.hpp>

#include <exception>
#include <stdexcept>
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

/// `json` as a T. Structs described with BOOST_DESCRIBE_STRUCT convert leniently, so stored
/// documents survive the type's evolution: a missing key leaves the member's default, a key the
/// struct does not describe is ignored (Boost.JSON's own conversion rejects both). Everything
/// else goes through boost::json::value_to. A mismatch is a rillflow::Error (kInvalidArgument)
/// naming the type, never a Boost exception.
template <class T>
T json_to(const Json& json) {
  if constexpr (std::is_same_v<T, Json>) {
    return json;
  } else if constexpr (boost::describe::has_describe_members<T>::value &&
                       std::is_default_constructible_v<T> && !std::is_union_v<T>) {
    const auto* object = json.if_object();
    if (object == nullptr) {
      detail::throw_json_conversion(typeid(T).name(), std::runtime_error("not a JSON object"));
    }
    T out{};
    using Members = boost::describe::describe_members<T, boost::describe::mod_public |
                                                             boost::describe::mod_inherited>;
    boost::mp11::mp_for_each<Members>([&](auto member) {
      if (const auto* value = object->if_contains(member.name)) {
        out.*member.pointer = json_to<std::remove_cvref_t<decltype(out.*member.pointer)>>(*value);
      }
    });
    return out;
  } else {
    try {
      return boost::json::value_to<T>(json);
    } catch (const std::exception& e) {
      detail::throw_json_conversion(typeid(T).name(), e);
    }
  }
}

}  // namespace rillflow
