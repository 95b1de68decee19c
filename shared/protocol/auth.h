// The authentication handshake, shared by both sides:
//   client -> kHello {user, client nonce}      server -> Challenge {server nonce}
//   client -> kProof {ClientProof(...)}        server -> AuthOk {ServerProof(...)}
//                                                  or kError kAuthFailed kAuthFailedMessage
// Proofs are HMAC-SHA256 under the user's auth key (crypto.h) over a role
// label and both nonces, so neither side can replay an old conversation and
// the password never crosses the wire.
#pragma once

#include "shared/crypto/crypto.h"

namespace dfs {

inline constexpr char kAuthFailedMessage[] = "Invalid Username/Password. Please try again.";

// HMAC(auth_key, "dfs client proof" || client_nonce || server_nonce)
Key ClientProof(const Key& auth_key, const Key& client_nonce, const Key& server_nonce);
// HMAC(auth_key, "dfs server proof" || client_nonce || server_nonce)
Key ServerProof(const Key& auth_key, const Key& client_nonce, const Key& server_nonce);

}  // namespace dfs
