// Version resolution and record screening (see version.h).
#include "fuse_client/client/version.h"

#include <algorithm>
#include <map>
#include <utility>

#include "shared/util/names.h"

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

RecordCheck CheckRecord(const PieceHeader& h, const Key& record_key, std::string_view path,
                        const Scheme& scheme) {
  // The MAC first: a forgery is reported as such whatever else it claims.
  if (!h.Verify(record_key, path)) return RecordCheck::kBadMac;
  if (h.scheme != scheme.id || h.servers != scheme.servers || h.copies != scheme.copies)
    return RecordCheck::kOtherScheme;
  // A folder record is no record of a file (folders read theirs apart).
  if (h.folder() || (h.tombstone() ? h.piece != 0 : (h.piece < 1 || h.piece > scheme.servers)))
    return RecordCheck::kBadPiece;
  return RecordCheck::kAccepted;
}

RecordCheck CheckFolderRecord(const PieceHeader& h, const Key& record_key, std::string_view path) {
  if (!h.Verify(record_key, path)) return RecordCheck::kBadMac;
  if (!h.folder() || h.piece != 0) return RecordCheck::kBadPiece;
  return RecordCheck::kAccepted;
}

ScreenedRecords ScreenRecords(std::vector<Observed> seen, const Key& record_key,
                              std::string_view path, const Scheme& scheme) {
  ScreenedRecords out;
  out.accepted.reserve(seen.size());
  for (auto& o : seen) {
    const RecordCheck why = CheckRecord(o.header, record_key, path, scheme);
    if (why == RecordCheck::kAccepted)
      out.accepted.push_back(std::move(o));
    else
      out.rejected.push_back({o.server, why});
  }
  return out;
}

FileVersion Resolve(std::string dir, std::string name, const std::vector<Observed>& seen,
                    std::vector<RejectedRecord> rejected) {
  FileVersion v;
  v.dir = std::move(dir);
  v.name = std::move(name);
  v.rejected = std::move(rejected);
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
    v.holders[h.piece - 1].push_back(o.server);
  }
  return v;
}

FileVersion ResolveVerified(std::string dir, std::string name, std::vector<Observed> seen,
                            const Key& record_key, const Scheme& scheme) {
  const std::string path = JoinName(dir, name);
  ScreenedRecords s = ScreenRecords(std::move(seen), record_key, path, scheme);
  return Resolve(std::move(dir), std::move(name), s.accepted, std::move(s.rejected));
}

std::string DescribeRejected(const std::vector<RejectedRecord>& rejected,
                             const std::function<std::string(int)>& server_name) {
  // (reason, server) -> records, in a stable order.
  std::map<std::pair<RecordCheck, int>, int> counts;
  for (const auto& r : rejected) ++counts[{r.why, r.server}];
  std::string out;
  for (const auto& [key, n] : counts) {
    const auto [why, server] = key;
    if (!out.empty()) out += "; ";
    out += std::to_string(n) + (n == 1 ? " record on " : " records on ") + server_name(server);
    switch (why) {
      case RecordCheck::kBadMac:
        out += " failed authentication";
        break;
      case RecordCheck::kOtherScheme:
        out += " belongs to another server layout";
        break;
      case RecordCheck::kBadPiece:
      case RecordCheck::kAccepted:
        out += " has an invalid piece index";
        break;
    }
    out += " (ignored)";
  }
  return out;
}

}  // namespace dfs::client
