// Helpers for the dfs_server tests: a temp folder removed even when a test
// fails, piece headers, and staging a piece through the Store.
#pragma once

#include <doctest/doctest.h>
#include <stdlib.h>

#include <filesystem>
#include <stdexcept>
#include <string>

#include "dfs_server/store.h"
#include "shared/crypto/crypto.h"
#include "shared/format/piece_header.h"
#include "shared/placement/placement.h"

namespace dfs::server::testing {

// A fresh folder under $TMPDIR (or /tmp), removed with everything in it.
class TempDir {
 public:
  TempDir() {
    const char* base = std::getenv("TMPDIR");
    std::string pattern = std::string(base && *base ? base : "/tmp") + "/dfs_server_test.XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::filesystem::path& path() const { return path_; }
  std::string str() const { return path_.string(); }

 private:
  std::filesystem::path path_;
};

inline Stamp StampAt(uint64_t t) { return Stamp{t, 7}; }

// Header of piece `piece` of a 4-piece file of `file_size` bytes.
inline PieceHeader MakeHeader(const Cid& cid, const Stamp& stamp, int piece,
                              uint64_t file_size = 1000, uint32_t chunk_bytes = 256) {
  PieceHeader h;
  h.cid = cid;
  h.stamp = stamp;
  h.piece = static_cast<uint8_t>(piece);
  h.x = 1;
  h.file_size = file_size;
  h.piece_size = PieceSize(file_size, 4, piece);
  h.chunk_bytes = chunk_bytes;
  h.mtime_ns = 123;
  return h;
}

// Deterministic "sealed" bytes of a piece.
inline std::string SealedBytes(const PieceHeader& h) {
  std::string out(h.sealed_size(), '\0');
  for (size_t i = 0; i < out.size(); ++i)
    out[i] = static_cast<char>((i * 31 + h.piece * 7 + h.cid[0]) & 0xff);
  return out;
}

// Stages a complete piece (in a few appends) and returns the Finish status.
inline Status StagePiece(Store& store, const std::string& user, const std::string& dir,
                         const std::string& name, const PieceHeader& h) {
  auto staged = store.BeginPut(user, dir, name, h);
  if (!staged.ok()) return staged.status();
  const std::string data = SealedBytes(h);
  for (size_t pos = 0; pos < data.size(); pos += 100) {
    Status s = staged->Append(std::string_view(data).substr(pos, 100));
    if (!s.ok()) return s;
  }
  return staged->Finish();
}

}  // namespace dfs::server::testing
