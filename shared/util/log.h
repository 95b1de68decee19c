// Logging setup: named spdlog loggers ("net", "store", "fuse", "client", "main")
// writing to stderr, level chosen by a flag. Never call from a signal handler.
#pragma once

#include <spdlog/spdlog.h>

#include <memory>
#include <string>
#include <string_view>

namespace dfs {

// Parses "trace|debug|info|warn|error|critical|off"; throws std::invalid_argument otherwise.
spdlog::level::level_enum ParseLogLevel(std::string_view name);

// Sets the level for every logger (existing and future). Safe to call more than once.
void SetupLogging(spdlog::level::level_enum level);

// The named logger, created on first use (stderr, shared sink).
std::shared_ptr<spdlog::logger> Logger(const std::string& name);

}  // namespace dfs
