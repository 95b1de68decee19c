// Placement arithmetic (see placement.h for the rule).
#include "shared/placement/placement.h"

#include <algorithm>

namespace dfs {

uint64_t PieceSize(uint64_t n, int pieces, int k) {
  const uint64_t p = static_cast<uint64_t>(pieces);
  return n / p + (static_cast<uint64_t>(k - 1) < n % p ? 1 : 0);
}

uint64_t PieceOffset(uint64_t n, int pieces, int k) {
  const uint64_t p = static_cast<uint64_t>(pieces);
  const uint64_t before = static_cast<uint64_t>(k - 1);
  return before * (n / p) + std::min(before, n % p);
}

int ResidueOf(std::span<const uint8_t, 16> md5, int servers) {
  uint32_t r = 0;
  for (uint8_t b : md5) r = (r * 256 + b) % static_cast<uint32_t>(servers);
  return static_cast<int>(r);
}

namespace {
int Mod(int a, int n) { return ((a % n) + n) % n; }
}  // namespace

std::vector<int> PiecesOnServer(const Scheme& scheme, int x, int server) {
  const int n = scheme.servers;
  const int a = Mod(server - 1 - x, n) + 1;
  std::vector<int> out;
  for (int c = 0; c < scheme.copies; ++c) out.push_back(Mod(a - 1 + c, n) + 1);
  return out;
}

std::vector<int> ServersForPiece(const Scheme& scheme, int x, int piece) {
  const int n = scheme.servers;
  std::vector<int> out;
  // Server i has first piece a(i) = piece - c for the c-th copy.
  for (int c = 0; c < scheme.copies; ++c) out.push_back(Mod(piece - 1 - c + x, n) + 1);
  return out;
}

}  // namespace dfs
