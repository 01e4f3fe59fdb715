#include "documents/document_path.hpp"

#include <rillflow/error.hpp>

namespace rillflow::docs {

namespace {

[[noreturn]] void bad_path(std::string_view path, const std::string& why) {
  std::string shown(path.substr(0, 80));
  for (auto& c : shown) {
    if (static_cast<unsigned char>(c) < 0x20) c = '?';
  }
  throw Error(ErrorCode::kInvalidArgument, "invalid field path '" + shown + "': " + why);
}

}  // namespace

std::vector<PathSegment> parse_path(std::string_view path) {
  std::vector<PathSegment> out;
  if (path.empty()) return out;
  std::size_t i = 0;
  const std::size_t n = path.size();
  while (true) {
    // A key (possibly empty when the path starts with an index), then any [n] suffixes.
    std::string key;
    bool escaped_any = false;
    while (i < n && path[i] != '.' && path[i] != '[') {
      char c = path[i];
      if (c == '\0') bad_path(path, "NUL is not allowed");
      if (c == ']') bad_path(path, "unexpected ']'");
      if (c == '\\') {
        if (++i == n) bad_path(path, "trailing backslash");
        c = path[i];
        escaped_any = true;
      }
      key += c;
      ++i;
    }
    const bool leading_index = out.empty() && key.empty() && i < n && path[i] == '[';
    if (key.empty() && !escaped_any && !leading_index) bad_path(path, "empty key");
    if (!leading_index) out.push_back({std::move(key), false});
    while (i < n && path[i] == '[') {
      const auto close = path.find(']', i);
      if (close == std::string_view::npos) bad_path(path, "unterminated '['");
      const auto digits = path.substr(i + 1, close - i - 1);
      if (digits.empty() || digits.size() > 9 ||
          digits.find_first_not_of("0123456789") != std::string_view::npos) {
        bad_path(path, "an array index must be a non-negative number");
      }
      out.push_back({std::string(digits), true});
      i = close + 1;
    }
    if (i == n) break;
    if (path[i] != '.') bad_path(path, "expected '.' or '[' after ']'");
    if (++i == n) bad_path(path, "trailing '.'");
  }
  return out;
}

std::string text_array_literal(const std::vector<std::string>& elements) {
  std::string out = "{";
  for (std::size_t k = 0; k < elements.size(); ++k) {
    if (k > 0) out += ',';
    out += '"';
    for (const char c : elements[k]) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += '"';
  }
  out += '}';
  return out;
}

std::string path_parameter(std::string_view path) {
  std::vector<std::string> texts;
  for (auto& seg : parse_path(path)) texts.push_back(std::move(seg.text));
  return text_array_literal(texts);
}

void set_path(Json& root, std::string_view path, Json value) {
  const auto segments = parse_path(path);
  Json* at = &root;
  for (const auto& seg : segments) {
    if (seg.index) {
      if (at->is_null()) at->emplace_array();
      if (!at->is_array()) bad_path(path, "'" + seg.text + "' indexes a value that is no array");
      auto& arr = at->as_array();
      const auto idx = static_cast<std::size_t>(std::stoul(seg.text));
      if (idx > arr.size()) bad_path(path, "index " + seg.text + " is beyond the array's end");
      if (idx == arr.size()) arr.emplace_back(nullptr);
      at = &arr[idx];
    } else {
      if (at->is_null()) at->emplace_object();
      if (!at->is_object()) bad_path(path, "the parent of '" + seg.text + "' is no object");
      at = &at->as_object()[seg.text];
    }
  }
  *at = std::move(value);
}

Json nest(const std::vector<PathSegment>& segments, Json value) {
  for (auto it = segments.rbegin(); it != segments.rend(); ++it) {
    boost::json::object wrapper;
    wrapper[it->text] = std::move(value);
    value = std::move(wrapper);
  }
  return value;
}

}  // namespace rillflow::docs
