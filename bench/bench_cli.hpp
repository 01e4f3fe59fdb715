#pragma once
// The benchmarks' command line, written once: every program answers --help (usage on stdout,
// exit 0), rejects unknown arguments and bad values (exit 2), and knows the two common flags:
//   --quick     a short smoke run (the test suite's)
//   --durable   the embedded cluster with fsync=on and synchronous_commit=on (default: off)
// and opens the database the same way: $DATABASE_URL when set, else an embedded cluster.
// result() prints one figure as a machine-readable line for bench/run's table.

#include <rillflow/embedded/embedded_postgres.hpp>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace bench {

/// The nearest-rank percentile `p` (0..1) of `v` (0.5: the median), 0 for no samples.
inline double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<std::size_t>(p * static_cast<double>(v.size())))];
}

/// One figure beside its raw-PostgreSQL baseline (baseline 0: none), as a line bench/run reads:
///   @result TAB program TAB fsync off|on TAB measure TAB unit TAB rillflow TAB baseline TAB
///   higher|lower
/// `higher_is_better` false for latencies and times (the ratio is then baseline / rillflow).
inline void print_result(const std::string& program, bool durable, const std::string& measure,
                         const char* unit, double rillflow, double baseline,
                         bool higher_is_better = true) {
  std::printf("@result\t%s\t%s\t%s\t%s\t%.6g\t%.6g\t%s\n", program.c_str(),
              durable ? "fsync on" : "fsync off", measure.c_str(), unit, rillflow, baseline,
              higher_is_better ? "higher" : "lower");
  std::fflush(stdout);
}

class Cli {
 public:
  Cli(std::string program, std::string summary)
      : program_(std::move(program)), summary_(std::move(summary)) {
    flag("--quick", quick, "a short smoke run (what the test suite runs)");
    flag("--durable", durable,
         "embedded cluster with fsync=on and synchronous_commit=on (default off)");
  }

  bool quick = false;
  bool durable = false;

  Cli& flag(std::string name, bool& target, std::string help) {
    options_.push_back({std::move(name), "", std::move(help), [&target](const std::string&) {
                          target = true;
                          return true;
                        }});
    return *this;
  }
  /// An option taking a value: an unsigned integer, a double or a string.
  Cli& option(std::string name, std::size_t& target, std::string help) {
    return value(std::move(name), "N", std::move(help), [&target](const std::string& v) {
      char* end = nullptr;
      const auto n = std::strtoull(v.c_str(), &end, 10);
      if (v.empty() || *end != '\0' || v[0] == '-') return false;
      target = static_cast<std::size_t>(n);
      return true;
    });
  }
  Cli& option(std::string name, int& target, std::string help) {
    return value(std::move(name), "N", std::move(help), [&target](const std::string& v) {
      char* end = nullptr;
      const auto n = std::strtol(v.c_str(), &end, 10);
      if (v.empty() || *end != '\0') return false;
      target = static_cast<int>(n);
      return true;
    });
  }
  Cli& option(std::string name, double& target, std::string help) {
    return value(std::move(name), "X", std::move(help), [&target](const std::string& v) {
      char* end = nullptr;
      const double d = std::strtod(v.c_str(), &end);
      if (v.empty() || *end != '\0') return false;
      target = d;
      return true;
    });
  }
  Cli& option(std::string name, std::string& target, std::string help) {
    return value(std::move(name), "S", std::move(help), [&target](const std::string& v) {
      target = v;
      return true;
    });
  }

  /// Exits 0 after --help, 2 on an unknown argument or a bad value.
  void parse(int argc, char** argv) {
    for (int i = 1; i < argc; ++i) {
      const std::string arg = argv[i];
      if (arg == "--help" || arg == "-h") {
        usage(stdout);
        std::exit(0);
      }
      const Option* o = find(arg);
      if (o == nullptr) fail("unknown argument " + arg);
      std::string v;
      if (!o->meta.empty()) {
        if (i + 1 >= argc) fail(arg + " needs a value");
        v = argv[++i];
      }
      if (!o->apply(v)) fail("bad value for " + arg + ": '" + v + "'");
    }
  }

  void usage(std::FILE* out) const {
    std::fprintf(out, "usage: %s [options]\n%s\n\noptions:\n", program_.c_str(), summary_.c_str());
    for (const auto& o : options_) {
      const std::string left = o.name + (o.meta.empty() ? "" : " " + o.meta);
      std::fprintf(out, "  %-22s %s\n", left.c_str(), o.help.c_str());
    }
    std::fprintf(out, "  %-22s %s\n", "--help", "this text");
    std::fprintf(out,
                 "\nUses $DATABASE_URL when set (--durable then has no effect: the server's own "
                 "settings apply), else an embedded PostgreSQL for the run.\n");
  }

  /// $DATABASE_URL, or an embedded cluster (durable with --durable) for the length of the run.
  rillflow::LocalDatabase database() const {
    rillflow::EmbeddedPostgresOptions o;
    o.durable = durable;
    return rillflow::LocalDatabase::from_env("DATABASE_URL", o);
  }
  /// "fsync off" or "fsync on", for the programs' headers and the tables.
  const char* durability() const { return durable ? "fsync on" : "fsync off"; }

  /// One figure beside its raw-PostgreSQL baseline, for bench/run (see print_result).
  void result(const std::string& measure, const char* unit, double rillflow, double baseline,
              bool higher_is_better = true) const;

 private:
  struct Option {
    std::string name, meta, help;
    std::function<bool(const std::string&)> apply;
  };
  Cli& value(std::string name, std::string meta, std::string help,
             std::function<bool(const std::string&)> apply) {
    options_.push_back({std::move(name), std::move(meta), std::move(help), std::move(apply)});
    return *this;
  }
  const Option* find(const std::string& name) const {
    for (const auto& o : options_) {
      if (o.name == name) return &o;
    }
    return nullptr;
  }
  [[noreturn]] void fail(const std::string& why) const {
    std::fprintf(stderr, "%s: %s (see --help)\n", program_.c_str(), why.c_str());
    std::exit(2);
  }

  std::string program_, summary_;
  std::vector<Option> options_;
};

inline void Cli::result(const std::string& measure, const char* unit, double rillflow,
                        double baseline, bool higher_is_better) const {
  print_result(program_, durable, measure, unit, rillflow, baseline, higher_is_better);
}

}  // namespace bench
