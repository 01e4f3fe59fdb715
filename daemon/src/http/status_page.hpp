#pragma once
// The status page served at GET /: daemon/src/http/status_page.html, embedded into the binary
// at build time by cmake/embed_text.cmake (which also hashes its inline script and style).

#include <string>
#include <string_view>

namespace rillflow::http {

/// The page's HTML.
extern const std::string_view kStatusPage;
/// CSP sources ('sha256-...') of the page's inline <script> and <style> blocks.
extern const std::string_view kStatusPageScriptHashes;
extern const std::string_view kStatusPageStyleHashes;

/// The page's Content-Security-Policy: nothing but its own inline script and style (by hash)
/// and fetches of this origin; no frames, forms, plugins or base changes.
inline std::string status_page_csp() {
  return "default-src 'none'; script-src " + std::string(kStatusPageScriptHashes) + "; style-src " +
         std::string(kStatusPageStyleHashes) +
         "; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; "
         "frame-ancestors 'none'";
}

}  // namespace rillflow::http
