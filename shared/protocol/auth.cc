// Handshake proofs (see auth.h).
#include "shared/protocol/auth.h"

#include <string>

namespace dfs {
namespace {

Key Proof(std::string_view label, const Key& key, const Key& binding, const Key& cn, const Key& sn,
          std::string_view user) {
  std::string data(label);
  for (const Key* k : {&binding, &cn, &sn})
    data.append(reinterpret_cast<const char*>(k->data()), k->size());
  data.push_back(static_cast<char>((user.size() >> 8) & 0xff));
  data.push_back(static_cast<char>(user.size() & 0xff));
  data.append(user);
  return HmacSha256(key, std::span(reinterpret_cast<const uint8_t*>(data.data()), data.size()));
}

}  // namespace

Key ClientProof(const Key& verifier, const Key& channel_binding, const Key& client_nonce,
                const Key& server_nonce, std::string_view user) {
  return Proof("dfs client proof v2", verifier, channel_binding, client_nonce, server_nonce, user);
}

Key ServerProof(const Key& verifier, const Key& channel_binding, const Key& client_nonce,
                const Key& server_nonce, std::string_view user) {
  return Proof("dfs server proof v2", verifier, channel_binding, client_nonce, server_nonce, user);
}

}  // namespace dfs
