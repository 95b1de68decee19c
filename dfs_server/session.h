// One connection of dfs_server: the challenge-response handshake, then
// requests one at a time, each answered by exactly one reply (kReply, a
// stream of them, or kError), with piece data streamed in bounded frames.
//
// Handshake (shared/protocol/auth.h): kHello{user, client nonce} ->
// Challenge{server nonce} (also for unknown users); kProof{ClientProof(...)}
// -> AuthOk{ServerProof(...)} or kError kAuthFailed kAuthFailedMessage and
// close. Any
// other request first: kError kPermission "not authenticated" and close.
// After that the connection acts only inside ROOT/USER.
//
// A malformed frame, a body that does not decode, or a message type that
// makes no sense at that point closes this connection (after a best-effort
// kError kProtocol); other connections are unaffected.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <string_view>

#include "dfs_server/store.h"
#include "shared/config/config.h"
#include "shared/crypto/crypto.h"
#include "shared/net/socket.h"
#include "shared/protocol/auth.h"
#include "shared/protocol/frame.h"
#include "shared/protocol/messages.h"
#include "shared/util/status.h"

namespace dfs::server {

// The auth keys of the users of dfs.conf. Immutable after construction, so
// any number of sessions may read it at once.
class AuthKeys {
 public:
  // Derives every user's key once (slow on purpose: PBKDF2 per plain
  // password). kInvalidArgument naming `origin` and the user for a malformed
  // "$dfs1$" secret.
  static Result<AuthKeys> FromConfig(const ServerConfig& config, std::string_view origin);

  // The key of `user`; for an unknown user a random key that no proof
  // matches, with *known = false, so both cases take the same path.
  const Key& KeyFor(std::string_view user, bool* known) const;
  size_t size() const { return keys_.size(); }

 private:
  AuthKeys();
  std::map<std::string, Key, std::less<>> keys_;
  Key dummy_{};
};

struct SessionOptions {
  Millis idle_timeout{120'000};  // no request for this long: close (io_timeout before auth)
  Millis io_timeout{30'000};     // deadline of each frame sent or received
};

class Session {
 public:
  // Serves the connection `fd`, which it does not own (its owner closes it
  // after Run() returns). `stop_fd` becomes readable when the server stops:
  // the session then closes as soon as it is between requests. `peer` names
  // the other end in logs.
  Session(int fd, Store& store, const AuthKeys& keys, int stop_fd, const SessionOptions& options,
          std::string peer);
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // Serves requests until the peer closes, a protocol violation, a failed
  // handshake, the idle timeout or a stop. Never throws.
  void Run();

 private:
  // Each handler sends its replies; a non-OK result means "close the
  // connection" (I/O failure or protocol violation), never a request error.
  Status Handshake(const Frame& f);
  Status Dispatch(const Frame& f);
  Status HandleList(const Frame& f);
  Status HandlePut(const Frame& f);
  Status HandleGet(const Frame& f);

  // Decodes the request body of f and answers with fn(request): a Status
  // (Empty reply when OK) or a Result<T> (T as the reply).
  template <typename Req, typename Fn>
  Status Simple(const Frame& f, Fn&& fn);

  Status Reply(const Frame& f, const Status& status);
  template <typename T>
  Status Reply(const Frame& f, const Result<T>& result);
  template <typename T>
  Status Send(MsgType type, uint32_t id, const T& msg);
  Status SendError(uint32_t id, const Status& status);
  // Sends kError kProtocol (best effort) and returns `why`, to close.
  Status Violation(uint32_t id, Status why);

  const int fd_;
  Store& store_;
  const AuthKeys& keys_;
  const int stop_fd_;
  const SessionOptions options_;
  const std::string peer_;

  // Handshake state.
  bool hello_seen_ = false;
  std::string hello_user_;
  Key client_nonce_{};
  Key server_nonce_{};
  std::string user_;  // set once authenticated
};

}  // namespace dfs::server
