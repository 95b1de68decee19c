// Unit tests of shared/protocol/auth.h: the login proofs.
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

// HMAC-SHA256(verifier, label || binding || cn || sn || u16 len || user),
// built independently from auth.h's documentation.
Key Reference(std::string label, const Key& verifier, const Key& binding, const Key& cn,
              const Key& sn, const std::string& user) {
  label.append(binding.begin(), binding.end());
  label.append(cn.begin(), cn.end());
  label.append(sn.begin(), sn.end());
  label.push_back(static_cast<char>(user.size() >> 8));
  label.push_back(static_cast<char>(user.size() & 0xff));
  label += user;
  return HmacSha256(verifier,
                    std::span(reinterpret_cast<const uint8_t*>(label.data()), label.size()));
}

TEST_CASE("computes the proofs as HMAC over the role, channel binding, nonces and user") {
  const Key verifier = KeyOf(1), binding = KeyOf(5), cn = KeyOf(2), sn = KeyOf(3);
  CHECK(ClientProof(verifier, binding, cn, sn, "Alice") ==
        Reference("dfs client proof v2", verifier, binding, cn, sn, "Alice"));
  CHECK(ServerProof(verifier, binding, cn, sn, "Alice") ==
        Reference("dfs server proof v2", verifier, binding, cn, sn, "Alice"));
  const std::string long_user(300, 'u');  // the length takes both bytes
  CHECK(ClientProof(verifier, binding, cn, sn, long_user) ==
        Reference("dfs client proof v2", verifier, binding, cn, sn, long_user));
  CHECK(ClientProof(verifier, binding, cn, sn, "") ==
        Reference("dfs client proof v2", verifier, binding, cn, sn, ""));
}

TEST_CASE("gives different proofs for each role, verifier, binding, nonce and user") {
  const Key verifier = KeyOf(1), binding = KeyOf(5), cn = KeyOf(2), sn = KeyOf(3);
  const Key client = ClientProof(verifier, binding, cn, sn, "Alice");
  CHECK(client == ClientProof(verifier, binding, cn, sn, "Alice"));  // deterministic
  // A server proof cannot be replayed as a client's, nor the other way.
  CHECK(client != ServerProof(verifier, binding, cn, sn, "Alice"));
  struct Case {
    std::string_view what;
    Key proof;
  };
  const Case cases[] = {
      {"another verifier (another server or password)",
       ClientProof(KeyOf(4), binding, cn, sn, "Alice")},
      {"another channel binding (a relayed handshake)",
       ClientProof(verifier, KeyOf(4), cn, sn, "Alice")},
      {"no channel binding", ClientProof(verifier, Key{}, cn, sn, "Alice")},
      {"another client nonce", ClientProof(verifier, binding, KeyOf(4), sn, "Alice")},
      {"another server nonce", ClientProof(verifier, binding, cn, KeyOf(4), "Alice")},
      {"the nonces swapped", ClientProof(verifier, binding, sn, cn, "Alice")},
      {"binding and nonce swapped", ClientProof(verifier, cn, binding, sn, "Alice")},
      {"another user", ClientProof(verifier, binding, cn, sn, "Bob")},
      {"the user's case", ClientProof(verifier, binding, cn, sn, "alice")},
      {"a longer user name", ClientProof(verifier, binding, cn, sn, "Alice2")},
      {"no user", ClientProof(verifier, binding, cn, sn, "")},
  };
  for (const Case& c : cases) {
    CAPTURE(c.what);
    CHECK(c.proof != client);
  }
  // The same holds for the server's proof.
  const Key server = ServerProof(verifier, binding, cn, sn, "Alice");
  CHECK(server != ServerProof(KeyOf(4), binding, cn, sn, "Alice"));
  CHECK(server != ServerProof(verifier, KeyOf(4), cn, sn, "Alice"));
  CHECK(server != ServerProof(verifier, binding, KeyOf(4), sn, "Alice"));
  CHECK(server != ServerProof(verifier, binding, cn, KeyOf(4), "Alice"));
  CHECK(server != ServerProof(verifier, binding, cn, sn, "Bob"));
}

TEST_CASE("the proof of one server does not open another") {
  const UserKeys keys = DeriveUserKeys("Alice", "SimplePassword");
  const Key binding = KeyOf(5), cn = KeyOf(2), sn = KeyOf(3);
  const Key dfs1 = ServerVerifier(keys.auth, "DFS1");
  const Key dfs2 = ServerVerifier(keys.auth, "DFS2");
  CHECK(ClientProof(dfs1, binding, cn, sn, "Alice") != ClientProof(dfs2, binding, cn, sn, "Alice"));
  CHECK(ServerProof(dfs1, binding, cn, sn, "Alice") != ServerProof(dfs2, binding, cn, sn, "Alice"));
}

TEST_CASE("uses the exact message the server sends on a failed login") {
  CHECK(std::string(kAuthFailedMessage) == "Invalid Username/Password. Please try again.");
}

}  // namespace
}  // namespace dfs
