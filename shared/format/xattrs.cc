// Extended attribute lists and their sealed trailers (layout in xattrs.h).
#include "shared/format/xattrs.h"

#include <vector>

#include "shared/util/coding.h"
#include "shared/util/names.h"

namespace dfs {

bool ValidXattrName(std::string_view name) {
  return name.size() > kUserXattrPrefix.size() && name.size() <= kMaxXattrNameBytes &&
         name.starts_with(kUserXattrPrefix) && name.find('\0') == std::string_view::npos;
}

Result<std::string> EncodeXattrs(const XattrMap& xattrs) {
  if (xattrs.size() > 0xffff) return Status::NoSpace("too many extended attributes");
  Encoder e;
  e.U16(static_cast<uint16_t>(xattrs.size()));
  for (const auto& [name, value] : xattrs) {
    if (!ValidXattrName(name))
      return Status::Invalid("extended attribute name " + Escaped(name) + " cannot be stored");
    if (value.size() > 0xffff) return Status::NoSpace("extended attribute value too large");
    e.U8(static_cast<uint8_t>(name.size()));
    e.Raw(name);
    e.Str(value);
    if (e.size() > kMaxXattrBytes) break;
  }
  if (e.size() > kMaxXattrBytes)
    return Status::NoSpace("extended attributes need more than " + std::to_string(kMaxXattrBytes) +
                           " bytes");
  return e.Take();
}

Result<XattrMap> DecodeXattrs(std::string_view encoded) {
  if (encoded.size() > kMaxXattrBytes) return Status::Corrupt("extended attributes too long");
  Decoder d(encoded);
  uint16_t count = 0;
  if (!d.U16(&count)) return Status::Corrupt("truncated extended attributes");
  XattrMap out;
  for (uint16_t i = 0; i < count; ++i) {
    uint8_t len = 0;
    std::string name, value;
    if (!d.U8(&len) || len == 0) return Status::Corrupt("truncated extended attributes");
    name.resize(len);
    if (!d.Raw(name.data(), len) || !d.Str(&value))
      return Status::Corrupt("truncated extended attributes");
    if (!ValidXattrName(name)) return Status::Corrupt("bad extended attribute name");
    if (!out.empty() && !(out.rbegin()->first < name))
      return Status::Corrupt("extended attributes out of order");
    out.emplace_hint(out.end(), std::move(name), std::move(value));
  }
  if (!d.done()) return Status::Corrupt("trailing bytes after extended attributes");
  return out;
}

Result<std::string> SealXattrs(const Key& content_key, const Cid& cid, const XattrMap& xattrs) {
  if (xattrs.empty()) return std::string();
  DFS_ASSIGN_OR_RETURN(std::string plain, EncodeXattrs(xattrs));
  uint64_t n = 0;
  RandomBytes(&n, sizeof n);
  std::string out(8, '\0');
  PutBE(reinterpret_cast<uint8_t*>(out.data()), n, 8);
  ChunkCipher cipher(content_key, cid);
  cipher.Seal(0, n, true, std::span(reinterpret_cast<const uint8_t*>(plain.data()), plain.size()),
              &out);
  return out;
}

Result<XattrMap> OpenXattrs(const Key& content_key, const Cid& cid, std::string_view trailer) {
  if (trailer.empty()) return XattrMap{};
  if (trailer.size() < kXattrTrailerOverhead || trailer.size() > kMaxXattrTrailerBytes)
    return Status::Corrupt("extended attribute trailer of " + std::to_string(trailer.size()) +
                           " bytes");
  const uint64_t n = GetBE(reinterpret_cast<const uint8_t*>(trailer.data()), 8);
  const std::string_view sealed = trailer.substr(8);
  std::vector<uint8_t> plain(sealed.size() - kTagBytes);
  ChunkCipher cipher(content_key, cid);
  DFS_RETURN_IF_ERROR(
      cipher
          .Open(0, n, true,
                std::span(reinterpret_cast<const uint8_t*>(sealed.data()), sealed.size()),
                plain.data())
          .Annotate("extended attributes"));
  return DecodeXattrs(std::string_view(reinterpret_cast<const char*>(plain.data()), plain.size()));
}

}  // namespace dfs
