// Unit tests of shared/protocol/auth.h: the handshake proofs.
#include "shared/protocol/auth.h"

#include <doctest/doctest.h>

#include <string>

namespace dfs {
namespace {

Key KeyOf(uint8_t seed) {
  Key k;
  for (size_t i = 0; i < k.size(); ++i) k[i] = static_cast<uint8_t>(seed * 17 + i);
  return k;
}

// HMAC-SHA256(key, label || client nonce || server nonce), built independently.
Key Reference(std::string label, const Key& key, const Key& cn, const Key& sn) {
  label.append(cn.begin(), cn.end());
  label.append(sn.begin(), sn.end());
  return HmacSha256(key, std::span(reinterpret_cast<const uint8_t*>(label.data()), label.size()));
}

TEST_CASE("computes the proofs as HMAC over the role label and both nonces") {
  const Key key = KeyOf(1), cn = KeyOf(2), sn = KeyOf(3);
  CHECK(ClientProof(key, cn, sn) == Reference("dfs client proof", key, cn, sn));
  CHECK(ServerProof(key, cn, sn) == Reference("dfs server proof", key, cn, sn));
}

TEST_CASE("gives different proofs for each role, key and nonce") {
  const Key key = KeyOf(1), cn = KeyOf(2), sn = KeyOf(3);
  const Key client = ClientProof(key, cn, sn);
  CHECK(client == ClientProof(key, cn, sn));  // deterministic
  CHECK(client != ServerProof(key, cn, sn));  // a server proof cannot be replayed as a client's
  CHECK(client != ClientProof(KeyOf(4), cn, sn));
  CHECK(client != ClientProof(key, KeyOf(4), sn));
  CHECK(client != ClientProof(key, cn, KeyOf(4)));
  CHECK(client != ClientProof(key, sn, cn));  // the nonces are not interchangeable
}

TEST_CASE("uses the exact message the server sends on a failed login") {
  CHECK(std::string(kAuthFailedMessage) == "Invalid Username/Password. Please try again.");
}

}  // namespace
}  // namespace dfs
