#pragma once
// Secrets never leave: every message that may quote a database URL or a libpq conninfo string
// goes through redact_secrets() before it reaches a log, an error, stderr or an HTTP body.

#include <functional>
#include <string>
#include <string_view>

namespace rillflow {

/// `text` with the userinfo of anything URL-like replaced by `***` (scheme://***@host/db; an
/// unencoded `@` in the password counts as part of it) and the value of every `password=`
/// key (quoted or not) replaced by `***`.
std::string redact_secrets(std::string_view text);

/// Where libpq's notices and asynchronous errors of Rillflow's connections go, one message per
/// call, already redacted and without the trailing newline. The default writes a line to stderr;
/// rillflowd sends them to its logger. Pass an empty function to restore the default.
void set_database_notice_sink(std::function<void(std::string_view)> sink);
/// Hands one raw libpq message to the sink (for code that holds its own PGconn).
void forward_database_notice(std::string_view raw_message);

}  // namespace rillflow
