// Fuzz target: every message body of shared/protocol/messages.h, in both
// directions (requests a server decodes, replies a client decodes).
// Input: byte 0 picks the message type (kDecoders below, modulo its size),
// the rest is the body.
// Properties: a body that decodes re-encodes to exactly the same bytes (the
// format has one encoding per value) and that encoding decodes again to an
// equal encoding; a body that does not decode is kProtocol, never another
// code; an error body survives EncodeError(DecodeError(x)); decoding a
// body never makes one allocation much larger than the body (a peer's count
// must not make the decoder allocate for elements that are not there).
#include <sanitizer/allocator_interface.h>

#include <atomic>
#include <string>
#include <string_view>

#include "shared/protocol/messages.h"
#include "tests/fuzz/fuzz_util.h"

namespace dfs {
namespace {

// The largest single allocation while `g_watching` (sanitizer malloc hook).
std::atomic<bool> g_watching{false};
std::atomic<size_t> g_largest{0};
void OnMalloc(const volatile void*, size_t size) {
  if (!g_watching.load(std::memory_order_relaxed)) return;
  size_t seen = g_largest.load(std::memory_order_relaxed);
  while (size > seen && !g_largest.compare_exchange_weak(seen, size)) {
  }
}
void OnFree(const volatile void*) {}

// Decoded objects may be larger than their wire form (a ListEntry of 3
// bytes on the wire is a 152-byte struct), but not without bound.
size_t AllocationBound(std::string_view body) { return 64 * body.size() + 4096; }

template <typename T>
void RoundTrip(std::string_view body) {
  g_largest = 0;
  g_watching = true;
  Result<T> msg = DecodeMessage<T>(body);
  g_watching = false;
  if (g_largest.load() > AllocationBound(body)) {
    std::fprintf(stderr, "decoding %zu bytes allocated %zu bytes at once\n", body.size(),
                 g_largest.load());
    FUZZ_CHECK(g_largest.load() <= AllocationBound(body));
  }
  if (!msg.ok()) {
    FUZZ_CHECK(msg.status().code() == Code::kProtocol);
    return;
  }
  const std::string wire = EncodeMessage(*msg);
  FUZZ_CHECK(wire == body);
  Result<T> again = DecodeMessage<T>(wire);
  FUZZ_CHECK_OK(again.status());
  FUZZ_CHECK(EncodeMessage(*again) == wire);
}

// The client's view of a kError body.
void ErrorRoundTrip(std::string_view body) {
  const Status s = DecodeError(body);
  FUZZ_CHECK(!s.ok());
  Result<ErrorReply> raw = DecodeMessage<ErrorReply>(body);
  if (!raw.ok() || raw->code == 0 || raw->code > kMaxCode) {
    FUZZ_CHECK(s.code() == Code::kProtocol);
    return;
  }
  FUZZ_CHECK(static_cast<uint8_t>(s.code()) == raw->code);
  FUZZ_CHECK(s.message() == raw->message);
  // The server cuts messages to 4096 bytes; what is left travels unchanged.
  const std::string wire = EncodeError(s);
  const Status back = DecodeError(wire);
  FUZZ_CHECK(back.code() == s.code());
  FUZZ_CHECK(back.message() == s.message().substr(0, 4096));
  FUZZ_CHECK(EncodeError(back) == wire);
}

using Decoder = void (*)(std::string_view);
// Append only: the first byte of every corpus file indexes this table.
constexpr Decoder kDecoders[] = {
    &RoundTrip<Empty>,            // 0  kPing, kStatFs, kDataEnd; Empty replies
    &RoundTrip<HelloRequest>,     // 1  kHello
    &RoundTrip<Challenge>,        // 2  reply to kHello
    &RoundTrip<ProofRequest>,     // 3  kProof
    &RoundTrip<AuthOk>,           // 4  reply to kProof
    &RoundTrip<ListRequest>,      // 5  kList
    &RoundTrip<ListReply>,        // 6  reply to kList
    &RoundTrip<StatRequest>,      // 7  kStat
    &RoundTrip<StatReply>,        // 8  reply to kStat
    &RoundTrip<PutBeginRequest>,  // 9  kPutBegin
    &RoundTrip<CommitRequest>,    // 10 kCommit
    &RoundTrip<CommitReply>,      // 11 reply to kCommit
    &RoundTrip<AbortRequest>,     // 12 kAbort
    &RoundTrip<GetRequest>,       // 13 kGet
    &RoundTrip<GetReply>,         // 14 reply to kGet
    &RoundTrip<DeleteRequest>,    // 15 kDelete
    &RoundTrip<PathRequest>,      // 16 kMkdir, kRmdir
    &RoundTrip<RenameRequest>,    // 17 kRename
    &RoundTrip<SetAttrRequest>,   // 18 kSetAttr
    &RoundTrip<StatFsReply>,      // 19 reply to kStatFs
    &RoundTrip<PurgeRequest>,     // 20 kPurge
    &RoundTrip<ErrorReply>,       // 21 kError, as a plain message
    &ErrorRoundTrip,              // 22 kError, as the client reads it (DecodeError)
    &RoundTrip<StageRequest>,     // 23 kStage
    &RoundTrip<Hint>,             // 24 kHintAdd, kHintDrop
    &RoundTrip<HintListRequest>,  // 25 kHintList
    &RoundTrip<HintListReply>,    // 26 reply to kHintList
    &RoundTrip<RevertRequest>,    // 27 kRevert
    &RoundTrip<FolderRequest>,    // 28 kFolder
};

}  // namespace
}  // namespace dfs

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  __sanitizer_install_malloc_and_free_hooks(dfs::OnMalloc, dfs::OnFree);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  constexpr size_t kCount = sizeof dfs::kDecoders / sizeof dfs::kDecoders[0];
  dfs::kDecoders[data[0] % kCount](dfs::fuzz::AsView(data + 1, size - 1));
  return 0;
}
