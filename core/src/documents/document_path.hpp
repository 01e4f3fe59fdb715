#pragma once
// Field paths of the document API ("profile.email", "a.b[0].c") and how they reach SQL: as
// bound text[] parameters, never as SQL text. Private to rillflow::core.

#include <rillflow/json.hpp>

#include <string>
#include <string_view>
#include <vector>

namespace rillflow::docs {

struct PathSegment {
  std::string text;    ///< the key, or the array index in decimal
  bool index = false;  ///< true for [n]
};

/// Parses a path; "" is the whole document. Throws Error (kInvalidArgument) for malformed
/// paths (empty keys, unterminated or non-numeric [..], a trailing backslash, NUL).
std::vector<PathSegment> parse_path(std::string_view path);

/// A PostgreSQL text[] literal of the given elements, each double-quoted with '"' and '\'
/// escaped: the value of a `$n::text[]` parameter.
std::string text_array_literal(const std::vector<std::string>& elements);
/// parse_path(path) as a text[] literal for `doc #> $n::text[]`.
std::string path_parameter(std::string_view path);

/// Sets the value at `path` inside `root`, creating missing parent objects (and arrays for
/// an index segment). Siblings are untouched. Throws Error (kInvalidArgument) when a parent
/// exists but is a scalar, or an array index is beyond the end + 1.
void set_path(Json& root, std::string_view path, Json value);

/// `value` nested under the keys of `segments`: {"a": {"b": value}}.
Json nest(const std::vector<PathSegment>& segments, Json value);

}  // namespace rillflow::docs
