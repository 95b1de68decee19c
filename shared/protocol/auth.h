// The login handshake, run inside TLS 1.3 (shared/net/tls.h):
//   client -> kHello {user, client nonce}
//   server -> Challenge {server nonce, server name}  (also for unknown users)
//   client -> kProof {ClientProof(...)}
//   server -> AuthOk {ServerProof(...)}  or  kError kAuthFailed kAuthFailedMessage
// Proofs are HMAC-SHA256 under the verifier of that server for that user
// (crypto.h ServerVerifier: each server holds only its own) over a role
// label, the TLS channel binding (the 32-byte exporter of tls.h), both
// nonces and the username. Binding to the channel means a relay that
// terminates TLS on both sides cannot pass a proof through: each side sees
// another exporter. Neither side can replay an old conversation, and the
// password never crosses the wire.
#pragma once

#include <string_view>

#include "shared/crypto/crypto.h"

namespace dfs {

inline constexpr char kAuthFailedMessage[] = "Invalid Username/Password. Please try again.";

// HMAC(verifier, "dfs client proof v2" || binding || cn || sn || u16 len || user)
Key ClientProof(const Key& verifier, const Key& channel_binding, const Key& client_nonce,
                const Key& server_nonce, std::string_view user);
// HMAC(verifier, "dfs server proof v2" || binding || cn || sn || u16 len || user)
Key ServerProof(const Key& verifier, const Key& channel_binding, const Key& client_nonce,
                const Key& server_nonce, std::string_view user);

}  // namespace dfs
