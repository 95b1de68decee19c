// Bodies of every protocol message (framing in frame.h). Each body is a
// struct whose Fields() lists its fields in wire order; EncodeMessage() and
// DecodeMessage() walk that list. Field encodings (big-endian):
//   u8/u16/u32/u64/i64: fixed width; bool: u8 0 or 1;
//   string: u16 length + bytes; Cid: 16 raw bytes; Key (nonce, proof): 32 raw bytes;
//   Stamp: u64 time_ns + u64 random; PieceHeader: 128 bytes (piece_header.h);
//   vector<T>: u32 count + elements (count checked against the bytes left,
//   kMinWireBytes below).
// Directory paths ("" = the user's root, "a/b") and names are validated by the
// receiver with names.h before use.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "shared/crypto/crypto.h"
#include "shared/format/piece_header.h"
#include "shared/protocol/frame.h"
#include "shared/util/coding.h"
#include "shared/util/status.h"

namespace dfs {

struct Empty {
  template <typename A>
  void Fields(A&) {}
};

// kHello. The client opens with its username and a fresh random nonce.
struct HelloRequest {
  std::string user;
  Key client_nonce{};
  template <typename A>
  void Fields(A& a) {
    a(user);
    a(client_nonce);
  }
};
// Reply to kHello. Sent for unknown users too (they fail at kProof).
// server_name is the name the server's verifiers are bound to (--name).
struct Challenge {
  Key server_nonce{};
  std::string server_name;
  template <typename A>
  void Fields(A& a) {
    a(server_nonce);
    a(server_name);
  }
};
// kProof: ClientProof() of auth.h (bound to the TLS channel).
struct ProofRequest {
  Key proof{};
  template <typename A>
  void Fields(A& a) {
    a(proof);
  }
};
// Reply to kProof: ServerProof() of auth.h.
struct AuthOk {
  Key server_proof{};
  template <typename A>
  void Fields(A& a) {
    a(server_proof);
  }
};

// kList: the entries of one directory of the user: subdirectories, and the
// header of every piece and tombstone file in it, over one or more
// ListReply frames, sorted by name (bytewise) across all of them; the
// entries of one name are consecutive. A client merges the servers'
// listings as they stream in and refuses one out of order (kProtocol).
struct ListRequest {
  std::string dir;
  template <typename A>
  void Fields(A& a) {
    a(dir);
  }
};
// A folder's own record (its attributes) comes as one more entry of its
// name, right after the folder entry, with a header of kind kFolder.
struct ListEntry {
  std::string name;     // user-visible name (without the ".K" decoration)
  bool is_dir = false;  // a subdirectory; otherwise `header` describes a piece,
                        // tombstone or folder record
  PieceHeader header;
  uint32_t subdirs = 0;  // a subdirectory's own subdirectories (its st_nlink - 2)
  template <typename A>
  void Fields(A& a) {
    a(name);
    a(is_dir);
    if (is_dir)
      a(subdirs);
    else
      a(header);
  }
};
struct ListReply {
  bool more = false;  // another ListReply frame follows
  std::vector<ListEntry> entries;
  template <typename A>
  void Fields(A& a) {
    a(more);
    a(entries);
  }
};

// kStat: what this server holds under one name. With inline_max > 0 the
// reply also carries the sealed bytes of one piece of the newest version
// held here, when they are at most min(inline_max, kMaxInlineBytes) long:
// the first piece of this server's run of consecutive pieces (piece a of the
// pair (a, a%N+1)), so that the servers of a small file together send each
// piece once and opening it for reading needs no GET.
inline constexpr uint32_t kMaxInlineBytes = 16 * 1024;
struct StatRequest {
  std::string dir;
  std::string name;
  uint32_t inline_max = 0;
  template <typename A>
  void Fields(A& a) {
    a(dir);
    a(name);
    a(inline_max);
  }
};
struct StatReply {
  bool is_dir = false;
  std::vector<PieceHeader> pieces;  // pieces and the tombstone, or the folder's record
  uint8_t inline_piece = 0;         // 0: no inline data
  std::string inline_data;          // sealed bytes of piece inline_piece (header in `pieces`)
  uint32_t subdirs = 0;             // of a folder (ListEntry::subdirs); on the wire after is_dir
  template <typename A>
  void Fields(A& a) {
    a(is_dir);
    a(subdirs);
    a(pieces);
    a(inline_piece);
    a(inline_data);
  }
};

// kPutBegin: stage one piece. After the Empty reply the client streams
// exactly header.sealed_size() bytes in kData frames and a kDataEnd; the
// server answers Empty once the staged file is complete and fsync'ed.
struct PutBeginRequest {
  std::string dir;
  std::string name;
  PieceHeader header;
  template <typename A>
  void Fields(A& a) {
    a(dir);
    a(name);
    a(header);
  }
};

// kStage: stage the pieces of one upload that this server holds, in one
// request. The client sends the request and, without waiting, the sealed
// bytes of every piece in `headers` order (exactly the sum of their
// sealed_size()) in kData frames and a kDataEnd. The server answers once,
// Empty when every piece is staged and fsync'ed, else the first error; it
// reads the whole stream either way, so the connection stays usable.
struct StageRequest {
  std::string dir;
  std::string name;
  std::vector<PieceHeader> headers;  // 1..kMaxStagePieces, one upload (same cid and stamp)
  template <typename A>
  void Fields(A& a) {
    a(dir);
    a(name);
    a(headers);
  }
};
inline constexpr size_t kMaxStagePieces = 64;

// kCommit: move every staged piece of `cid` into place as ".name.K",
// replacing older pieces and tombstones of that name.
struct CommitRequest {
  std::string dir;
  std::string name;
  Cid cid{};
  Stamp stamp;
  template <typename A>
  void Fields(A& a) {
    a(dir);
    a(name);
    a(cid);
    a(stamp);
  }
};
struct CommitReply {
  std::vector<uint8_t> committed;  // piece indexes now in place
  template <typename A>
  void Fields(A& a) {
    a(committed);
  }
};

// kAbort: drop every staged piece of `cid`.
struct AbortRequest {
  Cid cid{};
  template <typename A>
  void Fields(A& a) {
    a(cid);
  }
};

// kGet: a byte range of the sealed data of piece `piece` with content `cid`.
// Offsets count sealed bytes after the header. The reply states the range
// actually sent (clipped to the piece), then the data follows.
struct GetRequest {
  std::string dir;
  std::string name;
  uint8_t piece = 0;
  Cid cid{};
  uint64_t offset = 0;
  uint64_t length = 0;
  template <typename A>
  void Fields(A& a) {
    a(dir);
    a(name);
    a(piece);
    a(cid);
    a(offset);
    a(length);
  }
};
struct GetReply {
  PieceHeader header;
  uint64_t offset = 0;
  uint64_t length = 0;
  template <typename A>
  void Fields(A& a) {
    a(header);
    a(offset);
    a(length);
  }
};

// kDelete: put `tombstone` (a header of kind tombstone, signed by the client
// for dir/name) in place and drop older pieces, when the server holds any
// record of that name; a name it holds nothing of gets nothing.
struct DeleteRequest {
  std::string dir;
  std::string name;
  PieceHeader tombstone;
  template <typename A>
  void Fields(A& a) {
    a(dir);
    a(name);
    a(tombstone);
  }
};

// kFolder: Store::SetFolder (store.h): make folder `path` if `create` and
// it is missing, and keep `record` (kind kFolder, signed for `path`) as its
// attributes unless a newer one is there. Reply Empty.
struct FolderRequest {
  std::string path;
  bool create = false;
  PieceHeader record;
  template <typename A>
  void Fields(A& a) {
    a(path);
    a(create);
    a(record);
  }
};

// kMkdir, kRmdir. kRmdir removes the pieces and tombstones inside (the client
// checked that no live file remains) and fails with kNotEmpty on a subdirectory.
struct PathRequest {
  std::string path;
  template <typename A>
  void Fields(A& a) {
    a(path);
  }
};

// kRename: move the pieces of content `cid` of a file to a new name, each
// with its new header from `headers` (signed by the client for the new path,
// one per piece index, all with content `cid` and one new stamp); pieces of
// other content under the old name are stale and are dropped; the old name
// gets `tombstone` (signed for the old path, same stamp). `xattrs` is the
// sealed extended attributes the new headers describe (xattr_bytes): the
// file's newest, which a piece that missed a change of them gets too.
struct RenameRequest {
  std::string from_dir;
  std::string from_name;
  std::string to_dir;
  std::string to_name;
  Cid cid{};
  std::vector<PieceHeader> headers;
  PieceHeader tombstone;
  std::string xattrs;
  template <typename A>
  void Fields(A& a) {
    a(from_dir);
    a(from_name);
    a(to_dir);
    a(to_name);
    a(cid);
    a(headers);
    a(tombstone);
    a(xattrs);
  }
};

// kSetAttr: replace the headers of the pieces of content `cid` that are older
// than the new ones by `headers` (signed by the client, one per piece index,
// one new stamp, new mode/mtime/owner), and what follows their sealed data
// by `xattrs`, the sealed extended attributes (xattrs.h) the headers
// describe ("" for none). The sealed content stays as it is.
struct SetAttrRequest {
  std::string dir;
  std::string name;
  Cid cid{};
  std::vector<PieceHeader> headers;
  std::string xattrs;
  template <typename A>
  void Fields(A& a) {
    a(dir);
    a(name);
    a(cid);
    a(headers);
    a(xattrs);
  }
};

struct StatFsReply {
  uint64_t total_bytes = 0;
  uint64_t free_bytes = 0;
  uint64_t avail_bytes = 0;
  uint64_t files = 0;
  uint64_t files_free = 0;
  std::string version;  // the server's software version ("0.1.0")
  template <typename A>
  void Fields(A& a) {
    a(total_bytes);
    a(free_bytes);
    a(avail_bytes);
    a(files);
    a(files_free);
    a(version);
  }
};

// kPurge (repair): delete pieces of `name` older than `keep` whose cid is not
// `keep_cid`, and the tombstone too when `drop_tombstone` and it is not newer.
// With `drop_pieces`, also the pieces of `keep_cid` with those indexes: extra
// copies that hinted handoff put outside a piece's placement, dropped once
// its placement holders have it again.
struct PurgeRequest {
  std::string dir;
  std::string name;
  Cid keep_cid{};
  Stamp keep;
  bool drop_tombstone = false;
  std::vector<uint8_t> drop_pieces;
  template <typename A>
  void Fields(A& a) {
    a(dir);
    a(name);
    a(keep_cid);
    a(keep);
    a(drop_tombstone);
    a(drop_pieces);
  }
};

// kRevert: undo a commit of content `failed` that could not be completed on
// every piece's servers (DESIGN.md "Versions": a failed put never harms the
// previous version). Each piece of `failed` under dir/name is replaced by
// the piece of `restore` (the previous content) that the commit retired, or
// dropped when there is none; pieces of `restore` the commit retired
// without replacing come back too. `restore` all zero: nothing to restore.
struct RevertRequest {
  std::string dir;
  std::string name;
  Cid failed{};
  Cid restore{};
  template <typename A>
  void Fields(A& a) {
    a(dir);
    a(name);
    a(failed);
    a(restore);
  }
};

// A hint (DESIGN.md "Versions", hinted handoff): server `target` missed a
// change to `path` while it was unreachable. Clients write each hint to two
// live servers (kHintAdd) and hand it off once `target` answers again:
// bring `path` on `target` up to the newest version, then kHintDrop it
// everywhere. A hint names no content: handing it off reads the path's
// records, which are verified as always; the MAC (HintMac() in
// shared/format/hint.h) only keeps a server from inventing work.
struct Hint {
  std::string target;  // the server that missed the change, as clients name it ("DFS2")
  std::string path;    // "a/b.txt": a file or folder in the user's space
  Stamp stamp;         // when the change was made
  Key mac{};
  template <typename A>
  void Fields(A& a) {
    a(target);
    a(path);
    a(stamp);
    a(mac);
  }
};
// kHintList: the hints for `target` stored here, in order of HintId(),
// those after `after` ("" = from the start); more: another page follows.
struct HintListRequest {
  std::string target;
  std::string after;
  template <typename A>
  void Fields(A& a) {
    a(target);
    a(after);
  }
};
struct HintListReply {
  bool more = false;
  std::vector<Hint> hints;
  template <typename A>
  void Fields(A& a) {
    a(more);
    a(hints);
  }
};

struct ErrorReply {
  uint8_t code = 0;
  std::string message;
  template <typename A>
  void Fields(A& a) {
    a(code);
    a(message);
  }
};

// ---- encoding machinery ----

// Fewest bytes one element of type T takes on the wire. A vector's count is
// checked against the bytes left divided by it before the vector is sized,
// so a peer's count cannot make the receiver allocate for elements that are
// not in the body (a PieceHeader is 128 bytes on the wire, a ListEntry at
// least a name length and is_dir).
template <typename T>
inline constexpr size_t kMinWireBytes = 1;
template <>
inline constexpr size_t kMinWireBytes<PieceHeader> = kPieceHeaderBytes;
template <>
inline constexpr size_t kMinWireBytes<ListEntry> = 3;
template <>
inline constexpr size_t kMinWireBytes<Hint> = 2 + 2 + 16 + 32;

class EncodeArchive {
 public:
  explicit EncodeArchive(Encoder* e) : e_(e) {}
  void operator()(uint8_t& v) { e_->U8(v); }
  void operator()(uint16_t& v) { e_->U16(v); }
  void operator()(uint32_t& v) { e_->U32(v); }
  void operator()(uint64_t& v) { e_->U64(v); }
  void operator()(int64_t& v) { e_->I64(v); }
  void operator()(bool& v) { e_->Bool(v); }
  void operator()(std::string& v) { e_->Str(v); }
  template <size_t N>
  void operator()(std::array<uint8_t, N>& v) {
    e_->Raw(std::string_view(reinterpret_cast<const char*>(v.data()), N));
  }
  void operator()(Stamp& v) {
    e_->U64(v.time_ns);
    e_->U64(v.random);
  }
  void operator()(PieceHeader& v) { e_->Raw(v.Encode()); }
  template <typename T>
  void operator()(std::vector<T>& v) {
    e_->U32(static_cast<uint32_t>(v.size()));
    for (auto& x : v) (*this)(x);
  }
  template <typename T>
  void operator()(T& v) requires requires {
    v.Fields(*this);
  }
  { v.Fields(*this); }

 private:
  Encoder* e_;
};

class DecodeArchive {
 public:
  explicit DecodeArchive(Decoder* d) : d_(d) {}
  void operator()(uint8_t& v) { d_->U8(&v); }
  void operator()(uint16_t& v) { d_->U16(&v); }
  void operator()(uint32_t& v) { d_->U32(&v); }
  void operator()(uint64_t& v) { d_->U64(&v); }
  void operator()(int64_t& v) { d_->I64(&v); }
  void operator()(bool& v) { d_->Bool(&v); }
  void operator()(std::string& v) { d_->Str(&v); }
  template <size_t N>
  void operator()(std::array<uint8_t, N>& v) {
    d_->Raw(v.data(), N);
  }
  void operator()(Stamp& v) {
    d_->U64(&v.time_ns);
    d_->U64(&v.random);
  }
  void operator()(PieceHeader& v) {
    std::string raw(kPieceHeaderBytes, '\0');
    if (!d_->Raw(raw.data(), raw.size())) return;
    auto h = PieceHeader::Decode(raw);
    if (!h.ok()) {
      // On the wire a bad header is a malformed body (kProtocol), not kCorrupt data.
      error_ = Status::Protocol("bad piece header: " + h.status().message());
      return;
    }
    v = *h;
  }
  template <typename T>
  void operator()(std::vector<T>& v) {
    uint32_t n = 0;
    if (!d_->U32(&n)) return;
    // A count of more elements than the bytes left can hold is malformed,
    // and is refused before anything is allocated.
    if (n > d_->remaining() / kMinWireBytes<T>) {
      error_ = Status::Protocol("element count exceeds body");
      return;
    }
    v.resize(n);
    for (auto& x : v) {
      if (!ok()) return;
      (*this)(x);
    }
  }
  template <typename T>
  void operator()(T& v) requires requires {
    v.Fields(*this);
  }
  { v.Fields(*this); }

  bool ok() const { return error_.ok() && !d_->failed(); }
  Status status() const {
    if (!error_.ok()) return error_;
    if (d_->failed()) return Status::Protocol("malformed message body");
    return Status::Ok();
  }

 private:
  Decoder* d_;
  Status error_;
};

template <typename T>
std::string EncodeMessage(const T& msg) {
  Encoder e;
  EncodeArchive a(&e);
  // Fields() is shared by both directions; the encode archive only reads.
  const_cast<T&>(msg).Fields(a);
  return e.Take();
}

// kProtocol when the body is short, has trailing bytes or an invalid field.
template <typename T>
Result<T> DecodeMessage(std::string_view body) {
  Decoder d(body);
  DecodeArchive a(&d);
  T msg;
  msg.Fields(a);
  if (!a.ok()) return a.status();
  if (!d.done()) return Status::Protocol("trailing bytes in message body");
  return msg;
}

// A Status as an ErrorReply body, and back.
std::string EncodeError(const Status& status);
Status DecodeError(std::string_view body);

}  // namespace dfs
