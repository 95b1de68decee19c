// Fuzz target: the login handshake (shared/protocol/auth.h), both sides.
// Input: byte 0 picks the side (even: the server reading a client's frames,
// odd: the client reading a server's replies), the rest is the frame stream.
//   server side: frames of at most kMaxHandshakeBody, kHello then kProof as
//     dfs_server/session.cc Session::Handshake takes them;
//   client side: a reply to kHello (Challenge or kError), then a reply to
//     kProof (AuthOk or kError), read with ParseReply as
//     fuse_client/client/connection.cc does.
// Properties: every body that decodes re-encodes to the same bytes; what the
// server answers decodes on the client to the same values; a refused frame
// is kProtocol (or, on the client, the server's own error).
#include <string>
#include <string_view>

#include "shared/net/socket.h"
#include "shared/protocol/auth.h"
#include "shared/protocol/messages.h"
#include "shared/util/names.h"
#include "tests/fuzz/fuzz_util.h"

namespace dfs {
namespace {

const Key kVerifier = fuzz::FixedKey(3);
const Key kBinding = fuzz::FixedKey(4);
constexpr char kServerName[] = "DFS1";

template <typename T>
Result<T> DecodeExact(std::string_view body) {
  Result<T> msg = DecodeMessage<T>(body);
  if (msg.ok())
    FUZZ_CHECK(EncodeMessage(*msg) == body);
  else
    FUZZ_CHECK(msg.status().code() == Code::kProtocol);
  return msg;
}

// The client decodes the server's reply `msg` to the same bytes.
template <typename T>
T Delivered(const T& msg) {
  Frame f;
  f.header = {MsgType::kReply, 1, 0};
  f.body = EncodeMessage(msg);
  FUZZ_CHECK(f.body.size() <= MaxBodyFor(MsgType::kReply));
  Result<T> got = ParseReply<T>(f);
  FUZZ_CHECK_OK(got.status());
  FUZZ_CHECK(EncodeMessage(*got) == f.body);
  return *got;
}

// The next frame as the server reads it before login.
bool ReadFrameOk(std::string_view* in, Frame* f) {
  const Status s = fuzz::ReadFrame(in, f, kMaxHandshakeBody);
  if (!s.ok()) {
    FUZZ_CHECK(s.code() == Code::kProtocol || s.code() == Code::kUnavailable);
    return false;
  }
  FUZZ_CHECK(f->body.size() <= kMaxHandshakeBody);
  return true;
}

void ServerSide(std::string_view in) {
  bool hello_seen = false;
  HelloRequest hello;
  const Key server_nonce = fuzz::FixedKey(5);
  Frame f;
  while (ReadFrameOk(&in, &f)) {
    if (f.type() == MsgType::kHello) {
      if (hello_seen) return;  // "second hello": closed
      Result<HelloRequest> h = DecodeExact<HelloRequest>(f.body);
      if (!h.ok()) return;
      FUZZ_CHECK(h->user.size() + 2 + 32 <= kMaxHandshakeBody);
      hello = *h;
      hello_seen = true;
      const Challenge c = Delivered(Challenge{server_nonce, kServerName});
      FUZZ_CHECK(c.server_nonce == server_nonce && c.server_name == kServerName);
    } else if (f.type() == MsgType::kProof && hello_seen) {
      Result<ProofRequest> p = DecodeExact<ProofRequest>(f.body);
      if (!p.ok()) return;
      const Key expected =
          ClientProof(kVerifier, kBinding, hello.client_nonce, server_nonce, hello.user);
      if (!SecureEqual(expected, p->proof)) return;  // kAuthFailed: closed
      const Key proof =
          ServerProof(kVerifier, kBinding, hello.client_nonce, server_nonce, hello.user);
      FUZZ_CHECK(proof != expected);  // the two roles never share a proof
      FUZZ_CHECK(Delivered(AuthOk{proof}).server_proof == proof);
      return;  // logged in: the session target takes it from here
    } else {
      return;  // kPermission "not authenticated": closed
    }
  }
}

// One reply as the client's Connection::Call reads it.
template <typename T>
Result<T> ClientReads(std::string_view* in) {
  Frame f;
  Status got = fuzz::ReadFrame(in, &f, kMaxDataBody);
  if (!got.ok()) return got;
  Result<T> r = ParseReply<T>(f);
  if (f.type() == MsgType::kReply) {
    if (r.ok())
      FUZZ_CHECK(EncodeMessage(*r) == f.body);
    else
      FUZZ_CHECK(r.status().code() == Code::kProtocol);
  } else if (f.type() == MsgType::kError) {
    FUZZ_CHECK(!r.ok());
    FUZZ_CHECK(r.status().code() == DecodeError(f.body).code());
  } else {
    FUZZ_CHECK(!r.ok() && r.status().code() == Code::kProtocol);
  }
  return r;
}

void ClientSide(std::string_view in) {
  const Key client_nonce = fuzz::FixedKey(6);
  const std::string user = "alice";
  Result<Challenge> challenge = ClientReads<Challenge>(&in);
  if (!challenge.ok() || challenge->server_name != kServerName) return;
  (void)Escaped(challenge->server_name);
  Result<AuthOk> ok = ClientReads<AuthOk>(&in);
  if (!ok.ok()) return;
  const Key expected =
      ServerProof(kVerifier, kBinding, client_nonce, challenge->server_nonce, user);
  (void)SecureEqual(expected, ok->server_proof);
}

}  // namespace
}  // namespace dfs

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const std::string_view stream = dfs::fuzz::AsView(data + 1, size - 1);
  if (data[0] % 2 == 0)
    dfs::ServerSide(stream);
  else
    dfs::ClientSide(stream);
  return 0;
}
