// Tools print results on stdout (tnl-eval --json is parsed by other tools), so
// the engine's log lines (spdlog's default logger) must go to stderr.
#pragma once

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

namespace tnl::tools {

inline void log_to_stderr() { spdlog::set_default_logger(spdlog::stderr_color_mt("tnl")); }

}  // namespace tnl::tools
