#include <rillflow/redact.hpp>

#include <cctype>
#include <cstdio>
#include <mutex>

namespace rillflow {

namespace {

bool scheme_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '+' || c == '-' || c == '.';
}

// Replaces the userinfo of every scheme://userinfo@host. The userinfo runs to the last '@' before
// the end of the line or the next URL: a password holding an unencoded '@', '/' or space still
// ends up on the redacted side.
std::string redact_urls(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  std::size_t pos = 0;
  while (true) {
    const auto mark = text.find("://", pos);
    if (mark == std::string_view::npos || mark == 0 || !scheme_char(text[mark - 1])) {
      if (mark == std::string_view::npos) {
        out.append(text.substr(pos));
        return out;
      }
      out.append(text.substr(pos, mark + 3 - pos));
      pos = mark + 3;
      continue;
    }
    const std::size_t start = mark + 3;
    std::size_t end = text.find_first_of("\r\n", start);
    if (end == std::string_view::npos) end = text.size();
    if (const auto next = text.find("://", start); next != std::string_view::npos && next < end) {
      end = next;
    }
    const auto at = text.substr(start, end - start).rfind('@');
    out.append(text.substr(pos, start - pos));
    if (at == std::string_view::npos) {
      pos = start;
      continue;
    }
    out.append("***");
    pos = start + at;  // keeps the '@'
  }
}

// password=value, password = 'quoted \' value', password="..." (any case): the value goes.
std::string redact_keywords(const std::string& text) {
  static constexpr std::string_view kKey = "password";
  std::string out;
  out.reserve(text.size());
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t hit = std::string::npos;
    for (std::size_t i = pos; i + kKey.size() <= text.size(); ++i) {
      bool same = true;
      for (std::size_t k = 0; k < kKey.size() && same; ++k) {
        same = std::tolower(static_cast<unsigned char>(text[i + k])) == kKey[k];
      }
      if (same) {
        hit = i;
        break;
      }
    }
    if (hit == std::string::npos) break;
    std::size_t j = hit + kKey.size();
    while (j < text.size() && text[j] == ' ') ++j;
    if (j >= text.size() || text[j] != '=') {
      out.append(text, pos, hit + kKey.size() - pos);
      pos = hit + kKey.size();
      continue;
    }
    ++j;
    while (j < text.size() && text[j] == ' ') ++j;
    out.append(text, pos, j - pos);
    out.append("***");
    if (j < text.size() && (text[j] == '\'' || text[j] == '"')) {
      const char quote = text[j++];
      while (j < text.size() && text[j] != quote) j += text[j] == '\\' ? 2 : 1;
      j = std::min(j + 1, text.size());
    } else {
      while (j < text.size() && std::isspace(static_cast<unsigned char>(text[j])) == 0) ++j;
    }
    pos = j;
  }
  out.append(text, std::min(pos, text.size()), std::string::npos);
  return out;
}

std::mutex& sink_mutex() {
  static std::mutex m;
  return m;
}

std::function<void(std::string_view)>& sink() {
  static std::function<void(std::string_view)> s;
  return s;
}

}  // namespace

std::string redact_secrets(std::string_view text) {
  return redact_keywords(redact_urls(text));
}

void set_database_notice_sink(std::function<void(std::string_view)> fn) {
  std::lock_guard lock(sink_mutex());
  sink() = std::move(fn);
}

void forward_database_notice(std::string_view raw_message) {
  while (!raw_message.empty() && (raw_message.back() == '\n' || raw_message.back() == ' ')) {
    raw_message.remove_suffix(1);
  }
  if (raw_message.empty()) return;
  const std::string message = redact_secrets(raw_message);
  std::lock_guard lock(sink_mutex());
  if (sink()) {
    sink()(message);
  } else {
    std::fprintf(stderr, "%s\n", message.c_str());
  }
}

}  // namespace rillflow
