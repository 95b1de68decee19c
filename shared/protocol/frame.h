// Wire framing. Every message on a dfs connection is one frame: a fixed
// 16-byte header followed by `body length` bytes. All integers big-endian.
// Frames travel only inside TLS 1.3 (shared/net/tls.h).
//
//   offset size field
//     0     4  magic 0x44 0x46 0x53 0x21 ("DFS!")
//     4     1  protocol version (2)
//     5     1  message type (MsgType below)
//     6     2  flags, must be 0
//     8     4  request id: chosen by the client, echoed in every reply frame
//    12     4  body length: at most kMaxControlBody, or kMaxDataBody for kData;
//              at most kMaxHandshakeBody before the peer has logged in
//
// A receiver validates the header before it allocates the body, and closes
// the connection on any violation (that connection only).
//
// Conversation: one request at a time per connection. The client sends a
// request frame; the server answers with kReply (body per request, below) or
// kError {u8 code, str message}. Streams of piece data are kData frames ended
// by kDataEnd. See messages.h for every body.
#pragma once

#include <cstdint>
#include <string>

#include "shared/util/status.h"

namespace dfs {

inline constexpr uint32_t kFrameMagic = 0x44465321;  // "DFS!"
// 3: hints, PurgeRequest::drop_pieces; 4: folder records (kFolder), subdirs;
// 5: extended attributes (SetAttrRequest::xattrs, RenameRequest::xattrs)
inline constexpr uint8_t kProtocolVersion = 5;
inline constexpr size_t kFrameHeaderBytes = 16;
inline constexpr uint32_t kMaxControlBody = 64 * 1024;
inline constexpr uint32_t kMaxDataBody = 1024 * 1024;
// Before login only kHello and kProof are accepted, and they are small.
inline constexpr uint32_t kMaxHandshakeBody = 512;

enum class MsgType : uint8_t {
  // Requests (client -> server).
  kHello = 1,       // HelloRequest; reply Challenge
  kProof = 2,       // ProofRequest; reply AuthOk, or kError kAuthFailed
  kPing = 3,        // Empty; reply Empty
  kList = 4,        // ListRequest; reply ListReply frames until more == false
  kStat = 5,        // StatRequest; reply StatReply
  kPutBegin = 6,    // PutBeginRequest; reply Empty, then kData..., kDataEnd; reply Empty
  kCommit = 7,      // CommitRequest; reply CommitReply
  kAbort = 8,       // AbortRequest; reply Empty
  kGet = 9,         // GetRequest; reply GetReply, then kData..., kDataEnd
  kDelete = 10,     // DeleteRequest; reply Empty
  kMkdir = 11,      // PathRequest; reply Empty
  kRmdir = 12,      // PathRequest; reply Empty
  kRename = 13,     // RenameRequest; reply Empty
  kRenameDir = 14,  // retired: records are bound to their path, so folders
                    // move file by file (kRename); refused as unexpected
  kSetAttr = 15,    // SetAttrRequest; reply Empty
  kStatFs = 16,     // Empty; reply StatFsReply
  kPurge = 17,      // PurgeRequest; reply Empty
  kStage = 18,      // StageRequest, then kData... kDataEnd at once (no reply in
                    // between); one reply Empty when every piece is staged
  kHintAdd = 19,    // Hint; reply Empty once it is durable
  kHintList = 20,   // HintListRequest; reply HintListReply
  kHintDrop = 21,   // Hint; reply Empty (also when there was no such hint)
  kRevert = 22,     // RevertRequest; reply Empty
  kFolder = 23,     // FolderRequest; reply Empty
  // Both directions.
  kData = 32,     // raw bytes of a piece stream
  kDataEnd = 33,  // Empty: end of a piece stream
  // Replies (server -> client).
  kReply = 64,  // body depends on the request
  kError = 65,  // ErrorReply
};

bool IsKnownType(uint8_t type);

struct FrameHeader {
  MsgType type = MsgType::kPing;
  uint32_t request_id = 0;
  uint32_t body_length = 0;
};

// Largest body allowed for a frame of this type.
uint32_t MaxBodyFor(MsgType type);

void EncodeFrameHeader(const FrameHeader& h, uint8_t out[kFrameHeaderBytes]);
// kProtocol for a bad magic, version, type, flags, or a body over the limit
// (MaxBodyFor(type), and `max_body` when that is smaller).
Status DecodeFrameHeader(const uint8_t in[kFrameHeaderBytes], FrameHeader* out,
                         uint32_t max_body = kMaxDataBody);

struct Frame {
  FrameHeader header;
  std::string body;
  MsgType type() const { return header.type; }
};

}  // namespace dfs
