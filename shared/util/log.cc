// Named stderr loggers sharing one sink.
#include "shared/util/log.h"

#include <spdlog/sinks/stdout_sinks.h>

#include <stdexcept>

#include "shared/util/mutex.h"
#include "shared/util/thread_annotations.h"

namespace dfs {
namespace {

// Guards logger creation and g_level; leaf lock (spdlog's registry has its own).
// A function-local static: Logger() may run during static initialization.
Mutex& LoggerMutex() {
  static Mutex m;
  return m;
}
spdlog::level::level_enum g_level GUARDED_BY(LoggerMutex()) = spdlog::level::warn;

}  // namespace

spdlog::level::level_enum ParseLogLevel(std::string_view name) {
  static constexpr std::pair<std::string_view, spdlog::level::level_enum> kLevels[] = {
      {"trace", spdlog::level::trace}, {"debug", spdlog::level::debug},
      {"info", spdlog::level::info},   {"warn", spdlog::level::warn},
      {"error", spdlog::level::err},   {"critical", spdlog::level::critical},
      {"off", spdlog::level::off},
  };
  for (const auto& [n, l] : kLevels)
    if (n == name) return l;
  throw std::invalid_argument("unknown log level '" + std::string(name) +
                              "' (trace, debug, info, warn, error, critical, off)");
}

void SetupLogging(spdlog::level::level_enum level) {
  MutexLock lock(&LoggerMutex());
  g_level = level;
  spdlog::set_level(level);
  spdlog::apply_all([level](const std::shared_ptr<spdlog::logger>& l) { l->set_level(level); });
}

std::shared_ptr<spdlog::logger> Logger(const std::string& name) {
  MutexLock lock(&LoggerMutex());
  if (auto l = spdlog::get(name)) return l;
  static auto sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  auto l = std::make_shared<spdlog::logger>(name, sink);
  l->set_pattern("%Y-%m-%d %H:%M:%S.%e %^%l%$ [%n] %v");
  l->set_level(g_level);
  spdlog::register_logger(l);
  return l;
}

}  // namespace dfs
