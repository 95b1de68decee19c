// Unit tests of shared/placement/placement.h: the split, x and Table 1 rotation.
#include "shared/placement/placement.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <random>
#include <vector>

namespace dfs {
namespace {

TEST_CASE("matches all 16 cells of Table 1 for 4 servers and pairs") {
  // kTable[x][i-1] = the pair DFSi stores for residue x.
  const std::vector<int> kTable[4][4] = {
      {{1, 2}, {2, 3}, {3, 4}, {4, 1}},
      {{4, 1}, {1, 2}, {2, 3}, {3, 4}},
      {{3, 4}, {4, 1}, {1, 2}, {2, 3}},
      {{2, 3}, {3, 4}, {4, 1}, {1, 2}},
  };
  const Scheme scheme;  // the defaults are the classic scheme
  REQUIRE(scheme.servers == 4);
  REQUIRE(scheme.copies == 2);
  REQUIRE(scheme.valid());
  for (int x = 0; x < 4; ++x) {
    for (int server = 1; server <= 4; ++server) {
      CAPTURE(x);
      CAPTURE(server);
      CHECK(PiecesOnServer(scheme, x, server) == kTable[x][server - 1]);
    }
  }
}

TEST_CASE("lists the holders of a piece consistently with the pieces of each server") {
  for (int n = 1; n <= 8; ++n) {
    for (int copies = 1; copies <= std::min(n, 3); ++copies) {
      const Scheme scheme{n, copies};
      REQUIRE(scheme.valid());
      for (int x = 0; x < n; ++x) {
        CAPTURE(n);
        CAPTURE(copies);
        CAPTURE(x);
        // holders[k] = servers whose PiecesOnServer contains k.
        std::vector<std::vector<int>> holders(n + 1);
        for (int server = 1; server <= n; ++server) {
          std::vector<int> pieces = PiecesOnServer(scheme, x, server);
          REQUIRE(pieces.size() == static_cast<size_t>(copies));
          for (size_t c = 0; c < pieces.size(); ++c) {
            CHECK(pieces[c] >= 1);
            CHECK(pieces[c] <= n);
            // Consecutive pieces, wrapping n -> 1.
            if (c > 0) CHECK(pieces[c] == pieces[c - 1] % n + 1);
            holders[pieces[c]].push_back(server);
          }
        }
        for (int k = 1; k <= n; ++k) {
          CAPTURE(k);
          std::vector<int> servers = ServersForPiece(scheme, x, k);
          REQUIRE(servers.size() == static_cast<size_t>(copies));
          // Every piece is held by exactly `copies` distinct servers...
          CHECK(holders[k].size() == static_cast<size_t>(copies));
          std::vector<int> sorted = servers;
          std::sort(sorted.begin(), sorted.end());
          CHECK(std::adjacent_find(sorted.begin(), sorted.end()) == sorted.end());
          // ...and ServersForPiece names exactly those servers.
          CHECK(sorted == holders[k]);
          // The first holder has k as its first piece, the c-th holder as its c-th.
          for (int c = 0; c < copies; ++c) CHECK(PiecesOnServer(scheme, x, servers[c])[c] == k);
        }
      }
    }
  }
}

TEST_CASE("puts each piece of Table 1 on the two servers that list it") {
  const Scheme scheme;
  struct Case {
    int x;
    int piece;
    std::vector<int> servers;
  };
  const Case cases[] = {
      {0, 1, {1, 4}}, {0, 2, {2, 1}}, {0, 3, {3, 2}}, {0, 4, {4, 3}},
      {1, 1, {2, 1}}, {1, 4, {1, 4}}, {2, 1, {3, 2}}, {3, 1, {4, 3}},
  };
  for (const Case& c : cases) {
    CAPTURE(c.x);
    CAPTURE(c.piece);
    CHECK(ServersForPiece(scheme, c.x, c.piece) == c.servers);
  }
}

TEST_CASE("splits n bytes into 4 pieces of n/4 with the first n%4 one byte longer") {
  struct Case {
    uint64_t n;
    std::array<uint64_t, 4> sizes;
  };
  const Case cases[] = {
      {0, {0, 0, 0, 0}}, {1, {1, 0, 0, 0}}, {2, {1, 1, 0, 0}}, {3, {1, 1, 1, 0}}, {4, {1, 1, 1, 1}},
      {5, {2, 1, 1, 1}}, {6, {2, 2, 1, 1}}, {7, {2, 2, 2, 1}}, {8, {2, 2, 2, 2}}, {9, {3, 2, 2, 2}},
  };
  for (const Case& c : cases) {
    CAPTURE(c.n);
    uint64_t offset = 0;
    for (int k = 1; k <= 4; ++k) {
      CAPTURE(k);
      CHECK(PieceSize(c.n, 4, k) == c.sizes[k - 1]);
      CHECK(PieceSize(c.n, 4, k) == c.n / 4 + (static_cast<uint64_t>(k - 1) < c.n % 4 ? 1 : 0));
      CHECK(PieceOffset(c.n, 4, k) == offset);
      offset += PieceSize(c.n, 4, k);
    }
    CHECK(offset == c.n);  // the pieces concatenate to the file
  }
}

TEST_CASE("splits into contiguous pieces for other piece counts and large sizes") {
  const uint64_t sizes[] = {0, 1, 7, 63, 64, 65, 1000003, (1ULL << 40) + 5, UINT64_MAX / 3};
  for (int pieces = 1; pieces <= 8; ++pieces) {
    for (uint64_t n : sizes) {
      CAPTURE(pieces);
      CAPTURE(n);
      uint64_t offset = 0;
      for (int k = 1; k <= pieces; ++k) {
        CHECK(PieceOffset(n, pieces, k) == offset);
        const uint64_t size = PieceSize(n, pieces, k);
        CHECK((size == n / pieces || size == n / pieces + 1));
        offset += size;
      }
      CHECK(offset == n);
    }
  }
}

// The residue of a big-endian 128-bit integer, computed independently.
__extension__ typedef unsigned __int128 Uint128;
int ReferenceResidue(const std::array<uint8_t, 16>& d, int n) {
  Uint128 v = 0;
  for (uint8_t b : d) v = (v << 8) | b;
  return static_cast<int>(v % static_cast<Uint128>(n));
}

TEST_CASE("computes x as the last digest byte & 3 for 4 servers") {
  std::mt19937_64 rng(12345);
  for (int i = 0; i < 1000; ++i) {
    std::array<uint8_t, 16> d;
    for (auto& b : d) b = static_cast<uint8_t>(rng());
    CAPTURE(i);
    CHECK(ResidueOf(d, 4) == (d[15] & 3));
  }
}

TEST_CASE("computes x as the 128-bit big-endian digest mod N") {
  std::mt19937_64 rng(777);
  std::vector<std::array<uint8_t, 16>> digests;
  std::array<uint8_t, 16> all_ff;
  all_ff.fill(0xff);
  digests.push_back(all_ff);
  digests.push_back({});
  std::array<uint8_t, 16> top_bit{};
  top_bit[0] = 0x80;
  digests.push_back(top_bit);
  for (int i = 0; i < 500; ++i) {
    std::array<uint8_t, 16> d;
    for (auto& b : d) b = static_cast<uint8_t>(rng());
    digests.push_back(d);
  }
  for (int n : {1, 2, 3, 5, 6, 7, 8, 13, 64}) {
    for (const auto& d : digests) {
      CAPTURE(n);
      CHECK(ResidueOf(d, n) == ReferenceResidue(d, n));
    }
  }
}

TEST_CASE("accepts only schemes with 1..64 servers and 1..N copies") {
  struct Case {
    int servers;
    int copies;
    bool valid;
  };
  const Case cases[] = {{4, 2, true},  {1, 1, true},  {64, 64, true}, {64, 1, true},
                        {0, 0, false}, {0, 1, false}, {65, 2, false}, {4, 0, false},
                        {4, 5, false}, {-1, 1, false}};
  for (const Case& c : cases) {
    CAPTURE(c.servers);
    CAPTURE(c.copies);
    CHECK(Scheme{c.servers, c.copies}.valid() == c.valid);
    CHECK(Scheme{c.servers, c.copies}.pieces() == c.servers);
  }
}

}  // namespace
}  // namespace dfs
