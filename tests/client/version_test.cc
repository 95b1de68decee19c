// Unit tests of version resolution: which record of a name wins, and which
// servers can serve each piece.
#include <doctest/doctest.h>

#include "fuse_client/client/version.h"

namespace dfs::client {
namespace {

PieceHeader Piece(int k, uint8_t cid_byte, uint64_t time) {
  PieceHeader h;
  h.piece = static_cast<uint8_t>(k);
  h.cid.fill(cid_byte);
  h.stamp = {time, 0};
  h.file_size = 100;
  h.piece_size = PieceSize(100, 4, k);
  return h;
}

PieceHeader Tombstone(uint64_t time) {
  PieceHeader h;
  h.kind = PieceKind::kTombstone;
  h.piece = 0;
  h.stamp = {time, 0};
  return h;
}

TEST_CASE("the newest stamp wins and older content is ignored") {
  std::vector<Observed> seen = {{0, Piece(1, 1, 10)}, {0, Piece(2, 1, 10)}, {1, Piece(2, 2, 20)},
                                {1, Piece(3, 2, 20)}, {2, Piece(3, 2, 20)}, {2, Piece(4, 2, 20)},
                                {3, Piece(4, 2, 20)}, {3, Piece(1, 2, 20)}};
  FileVersion v = Resolve("", "f", seen);
  CHECK(v.exists);
  CHECK(v.newest.cid[0] == 2);
  CHECK(v.complete());
  CHECK(v.holders[0] == std::vector<int>{3});
  CHECK(v.holders[1] == std::vector<int>{1});
}

TEST_CASE("a newer tombstone deletes, an older one does not") {
  CHECK_FALSE(Resolve("", "f", {{0, Piece(1, 1, 10)}, {1, Tombstone(11)}}).exists);
  CHECK(Resolve("", "f", {{0, Piece(1, 1, 10)}, {1, Tombstone(9)}}).exists);
}

TEST_CASE("a version lacking a piece on every server is incomplete and names the piece") {
  FileVersion v =
      Resolve("", "f", {{0, Piece(1, 1, 10)}, {1, Piece(2, 1, 10)}, {2, Piece(4, 1, 10)}});
  CHECK_FALSE(v.complete());
  CHECK(v.missing_pieces() == std::vector<int>{3});
}

TEST_CASE("pieces of the same content with an older stamp still serve reads") {
  // An attribute change gave DFS1 a new stamp; DFS2 missed it.
  FileVersion v = Resolve("", "f", {{0, Piece(1, 5, 30)}, {1, Piece(1, 5, 10)}});
  CHECK(v.newest.stamp.time_ns == 30);
  CHECK(v.holders[0] == std::vector<int>{0, 1});
}

TEST_CASE("nothing seen means the file does not exist") {
  CHECK_FALSE(Resolve("", "f", {}).exists);
  CHECK_FALSE(Resolve("", "f", {}).complete());
}

}  // namespace
}  // namespace dfs::client
