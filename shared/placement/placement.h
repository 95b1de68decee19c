// Placement: how a file is split into pieces and which servers hold which
// piece. Matches Table 1 of the classic DFS assignment for 4 servers and
// generalizes the same rotation to N servers and C copies.
//
// For a file of n bytes and N pieces, piece k (1-based) has n/N bytes and the
// first n%N pieces one byte more. x = MD5(content) as a 128-bit big-endian
// integer mod N. Server i (1-based) holds pieces a, a+1, ..., a+C-1 (wrapping
// N -> 1) with a = ((i-1-x) mod N) + 1.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace dfs {

// Identifies the redundancy scheme in piece headers. Append only.
enum class SchemeId : uint8_t {
  kReplicatedRotation = 1,  // N pieces, each on C consecutive servers (above)
};

struct Scheme {
  int servers = 4;  // N: number of servers, also the number of pieces
  int copies = 2;   // C: servers holding each piece
  SchemeId id = SchemeId::kReplicatedRotation;

  int pieces() const { return servers; }
  bool valid() const { return servers >= 1 && servers <= 64 && copies >= 1 && copies <= servers; }
};

// Plaintext bytes of piece k (1-based) of an n-byte file.
uint64_t PieceSize(uint64_t n, int pieces, int k);
// Offset in the file where piece k begins.
uint64_t PieceOffset(uint64_t n, int pieces, int k);

// x: the 16-byte MD5 digest read as a big-endian integer, mod `servers`.
int ResidueOf(std::span<const uint8_t, 16> md5, int servers);

// Pieces held by server `server` (1-based), in rotation order: {a, a+1, ...}.
std::vector<int> PiecesOnServer(const Scheme& scheme, int x, int server);
// Servers (1-based) holding piece k, in the order a given piece's "first"
// holder comes first: the server for which k is its first piece, then the next.
std::vector<int> ServersForPiece(const Scheme& scheme, int x, int piece);

}  // namespace dfs
