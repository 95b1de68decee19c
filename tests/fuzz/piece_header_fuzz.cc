// Fuzz target: the 128-byte piece header (shared/format/piece_header.h),
// which servers read from disk and from the wire, and piece file names.
// Input: the header bytes (the first 128), then a path used for the MAC and
// as a piece file name (".NAME.K").
// Properties: Encode(Decode(x)) == the first 128 bytes of x; a decoded header
// describes a sane piece (sizes within limits, sealed size not below the
// plain size); Verify never crashes, is true after Sign for the same key and
// path, and false for another key or path; ParsePieceFileName and
// PieceFileName are inverse.
#include <sys/stat.h>

#include <string>
#include <string_view>

#include "shared/format/piece_header.h"
#include "shared/format/xattrs.h"
#include "shared/util/names.h"
#include "tests/fuzz/fuzz_util.h"

namespace dfs {
namespace {

void CheckHeader(std::string_view input) {
  Result<PieceHeader> h = PieceHeader::Decode(input);
  if (!h.ok()) {
    FUZZ_CHECK(h.status().code() == Code::kCorrupt);
    return;
  }
  FUZZ_CHECK(input.size() >= kPieceHeaderBytes);
  const std::string wire = h->Encode();
  FUZZ_CHECK(wire.size() == kPieceHeaderBytes);
  FUZZ_CHECK(wire == input.substr(0, kPieceHeaderBytes));
  Result<PieceHeader> again = PieceHeader::Decode(wire);
  FUZZ_CHECK_OK(again.status());
  FUZZ_CHECK(again->Encode() == wire);

  // What the server and the client compute from a decoded header.
  FUZZ_CHECK(h->file_size <= kMaxFileSize);
  FUZZ_CHECK((Scheme{h->servers, h->copies, h->scheme}.valid()));
  FUZZ_CHECK(ValidRecordMode(h->kind, h->mode));
  if (h->rdev != 0) FUZZ_CHECK(h->file_type() == S_IFCHR || h->file_type() == S_IFBLK);
  if (h->record_only()) {  // a tombstone or a folder record
    FUZZ_CHECK(h->piece == 0);
    FUZZ_CHECK(h->sealed_size() == 0);
    FUZZ_CHECK(h->xattr_bytes == 0);
    if (h->folder()) FUZZ_CHECK((h->mode & kModeTypeMask) == S_IFDIR);
  } else {
    FUZZ_CHECK(h->piece >= 1 && h->piece <= h->servers);
    FUZZ_CHECK(h->piece_size <= h->file_size);
    FUZZ_CHECK(h->sealed_size() >= h->piece_size);
    FUZZ_CHECK(h->sealed_size() == h->data_size() + h->xattr_bytes);
    FUZZ_CHECK(h->xattr_bytes == 0 || (h->xattr_bytes >= kXattrTrailerOverhead &&
                                       h->xattr_bytes <= kMaxXattrTrailerBytes));
  }

  // The MAC: the server cannot check it, the client always does.
  const std::string_view path =
      input.size() > kPieceHeaderBytes ? input.substr(kPieceHeaderBytes) : std::string_view();
  const Key key = fuzz::FixedKey(1);
  (void)h->Verify(key, path);
  PieceHeader signed_header = *h;
  signed_header.Sign(key, path);
  FUZZ_CHECK(signed_header.Verify(key, path));
  FUZZ_CHECK(!signed_header.Verify(fuzz::FixedKey(2), path));
  FUZZ_CHECK(!signed_header.Verify(key, std::string(path) + "x"));
  // Signing changes the MAC only.
  const std::string signed_wire = signed_header.Encode();
  FUZZ_CHECK(signed_wire.compare(0, kRecordMacOffset, wire, 0, kRecordMacOffset) == 0);
  Result<PieceHeader> reread = PieceHeader::Decode(signed_wire);
  FUZZ_CHECK_OK(reread.status());
  FUZZ_CHECK(reread->Verify(key, path));
}

void CheckFileName(std::string_view file) {
  std::string name;
  int piece = -1;
  if (!ParsePieceFileName(file, &name, &piece)) return;
  FUZZ_CHECK(piece >= 0 && piece <= 99);
  FUZZ_CHECK_OK(ValidateName(name));
  FUZZ_CHECK(PieceFileName(name, piece) == file);
}

}  // namespace
}  // namespace dfs

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input = dfs::fuzz::AsView(data, size);
  dfs::CheckHeader(input);
  dfs::CheckFileName(input.size() > dfs::kPieceHeaderBytes ? input.substr(dfs::kPieceHeaderBytes)
                                                           : input);
  return 0;
}
