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

#include <bit>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
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

// A T on the heap, or none: std::optional's interface in 8 bytes, for a
// member most objects lack (the folder record of an Entry: a listing of
// 100,000 files would carry 13 MB of empty optionals).
template <typename T>
class Boxed {
 public:
  Boxed() = default;
  Boxed(const Boxed& o) : p_(o.p_ ? std::make_unique<T>(*o.p_) : nullptr) {}
  Boxed(Boxed&&) noexcept = default;
  Boxed& operator=(const Boxed& o) {
    if (this != &o) p_ = o.p_ ? std::make_unique<T>(*o.p_) : nullptr;
    return *this;
  }
  Boxed& operator=(Boxed&&) noexcept = default;
  Boxed& operator=(const T& v) {
    emplace(v);
    return *this;
  }
  Boxed& operator=(const std::optional<T>& v) {
    if (v)
      emplace(*v);
    else
      reset();
    return *this;
  }
  template <typename... Args>
  T& emplace(Args&&... args) {
    p_ = std::make_unique<T>(std::forward<Args>(args)...);
    return *p_;
  }
  void reset() { p_.reset(); }
  bool has_value() const { return p_ != nullptr; }
  explicit operator bool() const { return has_value(); }
  T& operator*() { return *p_; }
  const T& operator*() const { return *p_; }
  T* operator->() { return p_.get(); }
  const T* operator->() const { return p_.get(); }

 private:
  std::unique_ptr<T> p_;
};

// A set of servers (0-based, at most 64, as a Scheme): the holders of one
// piece. Eight bytes instead of a vector of ints (a folder of 100,000 files
// keeps 400,000 of them), read like a sorted vector: iteration, size(),
// operator[] and std::find see the servers in ascending order.
class ServerSet {
 public:
  class Iterator {
   public:
    using iterator_category = std::forward_iterator_tag;
    using value_type = int;
    using difference_type = std::ptrdiff_t;
    using pointer = const int*;
    using reference = int;
    Iterator() = default;
    explicit Iterator(uint64_t rest) : rest_(rest) {}
    int operator*() const { return std::countr_zero(rest_); }
    Iterator& operator++() {
      rest_ &= rest_ - 1;
      return *this;
    }
    Iterator operator++(int) {
      Iterator before = *this;
      ++*this;
      return before;
    }
    bool operator==(const Iterator&) const = default;

   private:
    uint64_t rest_ = 0;  // the servers not visited yet
  };

  ServerSet() = default;
  ServerSet(std::initializer_list<int> servers) {
    for (int s : servers) push_back(s);
  }
  // Adds `server` (0..63); adding one already in the set changes nothing.
  void push_back(int server) { bits_ |= uint64_t{1} << server; }
  bool contains(int server) const { return (bits_ >> server) & 1; }
  size_t size() const { return static_cast<size_t>(std::popcount(bits_)); }
  bool empty() const { return bits_ == 0; }
  // The i-th server in ascending order. REQUIRES i < size().
  int operator[](size_t i) const {
    uint64_t rest = bits_;
    for (; i > 0; --i) rest &= rest - 1;
    return std::countr_zero(rest);
  }
  int front() const { return std::countr_zero(bits_); }
  Iterator begin() const { return Iterator(bits_); }
  Iterator end() const { return Iterator(0); }
  template <typename Pred>
  void erase_if(Pred pred) {
    for (int s : *this)
      if (pred(s)) bits_ &= ~(uint64_t{1} << s);
  }
  bool operator==(const ServerSet&) const = default;

 private:
  uint64_t bits_ = 0;
};

struct FileVersion {
  std::string dir;  // containing directory ("" = the user's root)
  std::string name;
  bool exists = false;  // false: never seen, or the newest record is a tombstone
  PieceHeader newest;   // metadata (size, mtime, mode, cid, x, scheme) of the newest record
  // holders[k-1]: servers (0-based) that hold piece k of newest.cid.
  std::vector<ServerSet> holders;
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
// `best`: a std::optional<PieceHeader> or a Boxed<PieceHeader>.
template <typename OptionalHeader>
void KeepNewest(OptionalHeader* best, const PieceHeader& h) {
  if (!*best || (*best)->stamp < h.stamp) *best = h;
}

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
