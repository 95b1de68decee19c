// One connection of dfs_server, after its TLS handshake: the login, then
// requests one at a time, each answered by exactly one reply (kReply, a
// stream of them, or kError), with piece data streamed in bounded frames.
//
// Login (shared/protocol/auth.h), inside TLS and bound to it:
// kHello{user, client nonce} -> Challenge{server nonce, server name} (also for
// unknown users); kProof{ClientProof(...)} -> AuthOk{ServerProof(...)}, or,
// after a delay that slows down guessing, kError kAuthFailed
// kAuthFailedMessage and close. Any other request first: kError kPermission
// "not authenticated" and close. Before login, frames are at most
// kMaxHandshakeBody and the whole login must end by one deadline. After it
// the connection acts only inside ROOT/USER.
//
// A malformed frame, a body that does not decode, or a message type that
// makes no sense at that point closes this connection (after a best-effort
// kError kProtocol); other connections are unaffected.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <string_view>

#include "dfs_server/metrics.h"
#include "dfs_server/store.h"
#include "shared/config/config.h"
#include "shared/crypto/crypto.h"
#include "shared/net/socket.h"
#include "shared/protocol/auth.h"
#include "shared/protocol/frame.h"
#include "shared/protocol/messages.h"
#include "shared/util/status.h"

namespace dfs::server {

// The login verifiers of the users of dfs.conf for this server. Immutable
// after construction, so any number of sessions may read it at once.
class AuthKeys {
 public:
  // Derives every user's verifier for `server_name` once (slow on purpose:
  // scrypt per plain password). kInvalidArgument naming `origin` and the
  // user for a malformed secret. *plain_users counts plain passwords.
  static Result<AuthKeys> FromConfig(const ServerConfig& config, std::string_view origin,
                                     std::string_view server_name, int* plain_users = nullptr);

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
  std::string server_name;           // sent in Challenge; verifiers are bound to it
  Millis idle_timeout{120'000};      // no request for this long: close
  Millis io_timeout{30'000};         // deadline of each frame sent or received
  Millis handshake_timeout{5'000};   // TLS handshake + login, from accept
  Millis auth_failure_delay{1'000};  // a failed login waits this long before its answer
  Metrics* metrics = nullptr;        // counted into when set (metrics.h)
};

// Called once the client's proof checked out, before AuthOk is sent: the
// server admits the user (OK) or refuses (kBusy: too many connections).
using AdmitFn = std::function<Status(const std::string& user)>;

class Session {
 public:
  // Serves the TLS connection `channel`, which it does not own. `stop_fd`
  // becomes readable when the server stops: the session then closes as soon
  // as it is between requests. `peer` names the other end in logs. The
  // login must be done by `login_deadline`; `admit` decides whether a user
  // whose proof checked out may stay.
  Session(TlsChannel& channel, Store& store, const AuthKeys& keys, int stop_fd,
          const SessionOptions& options, std::string peer, Deadline login_deadline, AdmitFn admit);
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
  Status HandleStage(const Frame& f);
  // Adds the sealed bytes of one small piece to a kStat reply (messages.h).
  void AddInlinePiece(const StatRequest& req, StatReply* reply);
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

  TlsChannel& ch_;
  Store& store_;
  const AuthKeys& keys_;
  const int stop_fd_;
  const SessionOptions options_;
  const std::string peer_;
  const Deadline login_deadline_;
  AdmitFn admit_;

  // Handshake state.
  bool hello_seen_ = false;
  std::string hello_user_;
  Key client_nonce_{};
  Key server_nonce_{};
  std::string user_;  // set once authenticated
};

}  // namespace dfs::server
