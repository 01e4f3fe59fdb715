#pragma once
// Which collection a C++ document type is stored in. Documents of different types never collide:
// rows are keyed by (collection, id).

#include <concepts>
#include <string_view>

namespace rillflow {

/// Names the collection of a document type. Either give the type a member
///   static constexpr std::string_view kCollection = "customers";
/// or register it from outside (for types you do not own) with
///   RILLFLOW_DOCUMENT(Customer, "customers")
/// which specialises this trait. A type with neither is a compile error: collection names are
/// persisted, so they are never derived from compiler-specific type names.
template <class T>
struct DocumentCollection {
  static constexpr std::string_view name() requires requires {
    { T::kCollection } -> std::convertible_to<std::string_view>;
  }
  { return T::kCollection; }
};

/// True when T names its collection (member or RILLFLOW_DOCUMENT registration).
template <class T>
concept Document = requires {
  { DocumentCollection<T>::name() } -> std::convertible_to<std::string_view>;
};

template <Document T>
constexpr std::string_view collection_of() {
  return DocumentCollection<T>::name();
}

}  // namespace rillflow

/// Registers `type` as a document stored in collection `name` (a string literal).
/// Use at namespace scope, outside any namespace.
#define RILLFLOW_DOCUMENT(type, name_literal)                         \
  template <>                                                         \
  struct rillflow::DocumentCollection<type> {                         \
    static constexpr std::string_view name() { return name_literal; } \
  }
