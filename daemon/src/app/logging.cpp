#include "app/logging.hpp"

#include <rillflow/json.hpp>
#include <rillflow/redact.hpp>

#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdio>
#include <mutex>

namespace rillflow::app {

namespace {

// One JSON object per line: {"ts": ..., "level": ..., "msg": ...}, escaped by Boost.JSON.
class JsonLinesSink : public spdlog::sinks::base_sink<std::mutex> {
 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    const auto level = spdlog::level::to_string_view(msg.level);
    const boost::json::object line{
        {"ts", format_timestamp(
                   std::chrono::time_point_cast<std::chrono::system_clock::duration>(msg.time))},
        {"level", std::string_view(level.data(), level.size())},
        {"msg", redact_secrets(std::string_view(msg.payload.data(), msg.payload.size()))},
        {"logger", "rillflowd"}};
    const auto text = boost::json::serialize(line) + "\n";
    std::fwrite(text.data(), 1, text.size(), stderr);
  }
  void flush_() override { std::fflush(stderr); }
};

// Text lines in the logger's pattern, redacted like every other output.
class RedactingTextSink : public spdlog::sinks::base_sink<std::mutex> {
 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    spdlog::memory_buf_t formatted;
    formatter_->format(msg, formatted);
    const auto text = redact_secrets(std::string_view(formatted.data(), formatted.size()));
    std::fwrite(text.data(), 1, text.size(), stderr);
  }
  void flush_() override { std::fflush(stderr); }
};

}  // namespace

void setup_logging(const config::LoggingConfig& logging) {
  std::shared_ptr<spdlog::logger> logger;
  if (logging.format == "json") {
    logger = std::make_shared<spdlog::logger>("rillflowd", std::make_shared<JsonLinesSink>());
  } else {
    logger = std::make_shared<spdlog::logger>("rillflowd", std::make_shared<RedactingTextSink>());
    logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
  }
  logger->flush_on(spdlog::level::trace);
  spdlog::set_default_logger(logger);
  set_log_level(logging.level);
  // libpq's notices and asynchronous errors (e.g. "FATAL: terminating connection") become log
  // lines in the configured format instead of raw text on stderr.
  set_database_notice_sink([](std::string_view message) {
    const bool severe = message.starts_with("FATAL") || message.starts_with("ERROR") ||
                        message.starts_with("PANIC");
    spdlog::log(severe ? spdlog::level::warn : spdlog::level::info, "PostgreSQL: {}", message);
  });
}

void set_log_level(const std::string& level) {
  spdlog::set_level(spdlog::level::from_str(level));
}

}  // namespace rillflow::app
