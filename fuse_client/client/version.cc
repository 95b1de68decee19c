// Version resolution (see version.h).
#include "fuse_client/client/version.h"

#include <algorithm>

namespace dfs::client {

bool FileVersion::complete() const {
  if (!exists) return false;
  return std::all_of(holders.begin(), holders.end(), [](const auto& h) { return !h.empty(); });
}

std::vector<int> FileVersion::missing_pieces() const {
  std::vector<int> out;
  for (size_t k = 0; k < holders.size(); ++k)
    if (holders[k].empty()) out.push_back(static_cast<int>(k + 1));
  return out;
}

FileVersion Resolve(std::string dir, std::string name, const std::vector<Observed>& seen) {
  FileVersion v;
  v.dir = std::move(dir);
  v.name = std::move(name);
  const Observed* newest = nullptr;
  for (const auto& o : seen)
    if (!newest || o.header.stamp > newest->header.stamp) newest = &o;
  if (!newest || newest->header.tombstone()) {
    if (newest) v.newest = newest->header;
    return v;
  }
  v.exists = true;
  v.newest = newest->header;
  v.holders.resize(v.newest.servers);
  for (const auto& o : seen) {
    const PieceHeader& h = o.header;
    if (h.tombstone() || h.cid != v.newest.cid || h.piece < 1 || h.piece > v.newest.servers)
      continue;
    auto& list = v.holders[h.piece - 1];
    if (std::find(list.begin(), list.end(), o.server) == list.end()) list.push_back(o.server);
  }
  return v;
}

}  // namespace dfs::client
