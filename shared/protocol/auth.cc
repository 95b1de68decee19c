// Handshake proofs (see auth.h).
#include "shared/protocol/auth.h"

#include <string>
#include <string_view>

namespace dfs {
namespace {

Key Proof(std::string_view label, const Key& key, const Key& cn, const Key& sn) {
  std::string data(label);
  data.append(reinterpret_cast<const char*>(cn.data()), cn.size());
  data.append(reinterpret_cast<const char*>(sn.data()), sn.size());
  return HmacSha256(key, std::span(reinterpret_cast<const uint8_t*>(data.data()), data.size()));
}

}  // namespace

Key ClientProof(const Key& auth_key, const Key& client_nonce, const Key& server_nonce) {
  return Proof("dfs client proof", auth_key, client_nonce, server_nonce);
}

Key ServerProof(const Key& auth_key, const Key& client_nonce, const Key& server_nonce) {
  return Proof("dfs server proof", auth_key, client_nonce, server_nonce);
}

}  // namespace dfs
