// Merges the listings of one folder from several servers while they stream
// in. Each server sends its entries sorted by name (kList, messages.h), so a
// name can be handed on as soon as every server still sending has sent a
// greater one: memory holds what the slowest server has not caught up with,
// not the whole folder from every server (8 headers per file: ~1 GiB for a
// folder of 100,000 files before this).
#pragma once

#include <cstddef>
#include <deque>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "fuse_client/client/version.h"
#include "shared/protocol/messages.h"
#include "shared/util/mutex.h"
#include "shared/util/status.h"
#include "shared/util/thread_annotations.h"

namespace dfs::client {

// What the servers sent of one name.
struct NameRecords {
  std::vector<int> dir_on;               // servers holding a folder of this name
  std::optional<PieceHeader> folder;     // the newest folder record that verified
  uint32_t subdirs = 0;                  // the folder's subfolders (most any server has)
  std::vector<Observed> headers;         // pieces and tombstones that verified
  std::vector<RejectedRecord> rejected;  // records that did not (ignored)
};

class ListMerge {
 public:
  // One entry a server sent, with the verdict on its record (kAccepted for
  // a folder).
  struct Record {
    ListEntry entry;
    RecordCheck check = RecordCheck::kAccepted;
  };
  // Called for every name, in order, under the merge's lock: keep it short,
  // and never call back into the merge.
  using Sink = std::function<void(std::string&& name, NameRecords&& records)>;

  // `max_bytes`: most memory one server's listing may cost the client: its
  // records waiting to be merged plus kEmittedBytes (and the name) for each
  // name handed on that it sent; beyond it Add() fails. So a server that
  // sends names without end is cut off before what the sink keeps of them
  // grows past the bound.
  ListMerge(int servers, size_t max_bytes, Sink sink);
  static constexpr size_t kEmittedBytes = 256;
  // A folder, a tombstone and a piece of each of up to 64 servers.
  static constexpr size_t kMaxRecordsPerName = 66;
  ListMerge(const ListMerge&) = delete;
  ListMerge& operator=(const ListMerge&) = delete;

  // Records server `s` sent next, in its order. kProtocol when a name comes
  // before one it sent earlier, when one name has more records than a
  // server can hold (kMaxRecordsPerName), or
  // beyond max_bytes; the server's records are then no longer taken (call
  // Finish()).
  [[nodiscard]] Status Add(int s, std::vector<Record> records) EXCLUDES(mu_);
  // Server `s` sent all it will (or failed; what it sent still counts).
  // Once every server has finished, every name has reached the sink.
  void Finish(int s) EXCLUDES(mu_);

 private:
  struct Stream {
    std::deque<Record> queue;
    std::optional<std::string> last;  // greatest name received
    size_t last_records = 0;          // records of it received
    size_t held_bytes = 0;            // of the records in `queue`
    size_t emitted_bytes = 0;         // charged for the names handed on
    bool done = false;
  };
  // Takes no more from `st` (what it sent still counts) and says why.
  Status CutOff(Stream& st, std::string why) REQUIRES(mu_);
  // Hands on every name no server can still add to.
  void Drain() REQUIRES(mu_);
  static size_t Weight(const Record& r) { return sizeof(Record) + r.entry.name.size(); }

  const size_t max_bytes_;
  Sink sink_;
  Mutex mu_;
  std::vector<Stream> streams_ GUARDED_BY(mu_);
};

}  // namespace dfs::client
