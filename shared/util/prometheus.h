// The Prometheus text exposition format (version 0.0.4), as dfs_server's
// --metrics and the mount's user.dfs.stats write it: a HELP and a TYPE line
// per metric, then its samples.
#pragma once

#include <string>
#include <string_view>

namespace dfs {

// "# HELP name help" and "# TYPE name type" (counter, gauge, histogram).
inline void AppendMetricHeader(std::string* out, std::string_view name, std::string_view type,
                               std::string_view help) {
  out->append("# HELP ").append(name).append(" ").append(help).append("\n");
  out->append("# TYPE ").append(name).append(" ").append(type).append("\n");
}

// One sample line: "name value" (name may carry labels: name{k="v"}).
inline void AppendSample(std::string* out, std::string_view name, std::string_view value) {
  out->append(name).append(" ").append(value).append("\n");
}

// A metric with one unlabelled sample.
inline void AppendMetric(std::string* out, std::string_view name, std::string_view type,
                         std::string_view help, std::string_view value) {
  AppendMetricHeader(out, name, type, help);
  AppendSample(out, name, value);
}

}  // namespace dfs
