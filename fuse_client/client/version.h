// Version resolution: what a set of piece headers seen on the servers says a
// name is now. The newest stamp wins (a tombstone means deleted); its content
// id (cid) is the content, and any piece of that cid, whatever its stamp (an
// older stamp only means an attribute change did not reach that server), can
// be used to rebuild it.
//
// The client trusts no server (DESIGN.md "Trust model"): every record read
// from a server is screened first (CheckRecord). One that fails is absent:
// never newest, never a holder, never a reason to delete anything; it is only
// counted (FileVersion::rejected) so that `dfc status` can report it.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "shared/crypto/crypto.h"
#include "shared/format/piece_header.h"
#include "shared/placement/placement.h"

namespace dfs::client {

// One piece or tombstone header as reported by server `server` (0-based).
struct Observed {
  int server = 0;
  PieceHeader header;
};

// The verdict on one record read from a server.
enum class RecordCheck {
  kAccepted,
  kBadMac,       // not made by this user for this path (forged, altered or moved)
  kOtherScheme,  // authentic, but for another scheme, server count or copy count
  kBadPiece,     // piece index out of range for its kind
};

// A record that was screened out, and who sent it.
struct RejectedRecord {
  int server = 0;  // 0-based
  RecordCheck why = RecordCheck::kBadMac;
};

struct FileVersion {
  std::string dir;  // containing directory ("" = the user's root)
  std::string name;
  bool exists = false;  // false: never seen, or the newest record is a tombstone
  PieceHeader newest;   // metadata (size, mtime, mode, cid, x, scheme) of the newest record
  // holders[k-1]: servers (0-based) that hold piece k of newest.cid.
  std::vector<std::vector<int>> holders;
  // Records of this name the servers sent that failed CheckRecord: ignored.
  // One entry per record, in the order they were seen.
  std::vector<RejectedRecord> rejected;

  uint64_t size() const { return newest.file_size; }
  int pieces() const { return static_cast<int>(holders.size()); }
  // Every piece has at least one reachable holder.
  bool complete() const;
  // Pieces (1-based) with no reachable holder.
  std::vector<int> missing_pieces() const;
};

// Whether `h`, read from a server as a record of `path` (JoinName(dir, name)),
// may be used: its MAC verifies under `record_key` for `path`, it names
// `scheme` (id, servers, copies), and its piece index is 1..servers for a
// piece and 0 for a tombstone. Pure and thread-safe.
RecordCheck CheckRecord(const PieceHeader& h, const Key& record_key, std::string_view path,
                        const Scheme& scheme);
inline bool AcceptRecord(const PieceHeader& h, const Key& record_key, std::string_view path,
                         const Scheme& scheme) {
  return CheckRecord(h, record_key, path, scheme) == RecordCheck::kAccepted;
}
// The same for a folder's own record (kind kFolder) of folder `path`.
RecordCheck CheckFolderRecord(const PieceHeader& h, const Key& record_key, std::string_view path);
// The newer of `best` and `h` (a folder record that passed CheckFolderRecord).
void KeepNewest(std::optional<PieceHeader>* best, const PieceHeader& h);

// The records of one name as read from the servers, split by CheckRecord().
struct ScreenedRecords {
  std::vector<Observed> accepted;
  std::vector<RejectedRecord> rejected;
};
ScreenedRecords ScreenRecords(std::vector<Observed> seen, const Key& record_key,
                              std::string_view path, const Scheme& scheme);

// REQUIRES: every header in `seen` belongs to dir/name and was accepted by
// CheckRecord(). `rejected` is carried into the result as it is.
FileVersion Resolve(std::string dir, std::string name, const std::vector<Observed>& seen,
                    std::vector<RejectedRecord> rejected = {});

// ScreenRecords() then Resolve(): what records straight from the servers say.
FileVersion ResolveVerified(std::string dir, std::string name, std::vector<Observed> seen,
                            const Key& record_key, const Scheme& scheme);

// "1 record on DFS2 failed authentication (ignored)"-style text for
// `rejected`, one clause per server and reason, servers named by
// `server_name`; "" when there are none.
std::string DescribeRejected(const std::vector<RejectedRecord>& rejected,
                             const std::function<std::string(int)>& server_name);

}  // namespace dfs::client
