// Version resolution: what a set of piece headers seen on the servers says a
// name is now. The newest stamp wins (a tombstone means deleted); its content
// id (cid) is the content, and any piece of that cid, whatever its stamp (an
// older stamp only means an attribute change did not reach that server), can
// be used to rebuild it.
#pragma once

#include <string>
#include <vector>

#include "shared/format/piece_header.h"

namespace dfs::client {

// One piece or tombstone header as reported by server `server` (0-based).
struct Observed {
  int server = 0;
  PieceHeader header;
};

struct FileVersion {
  std::string dir;  // containing directory ("" = the user's root)
  std::string name;
  bool exists = false;  // false: never seen, or the newest record is a tombstone
  PieceHeader newest;   // metadata (size, mtime, mode, cid, x, scheme) of the newest record
  // holders[k-1]: servers (0-based) that hold piece k of newest.cid.
  std::vector<std::vector<int>> holders;

  uint64_t size() const { return newest.file_size; }
  int pieces() const { return static_cast<int>(holders.size()); }
  // Every piece has at least one reachable holder.
  bool complete() const;
  // Pieces (1-based) with no reachable holder.
  std::vector<int> missing_pieces() const;
};

// REQUIRES: every header in `seen` belongs to dir/name.
FileVersion Resolve(std::string dir, std::string name, const std::vector<Observed>& seen);

}  // namespace dfs::client
