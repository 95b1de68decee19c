#include "shared/format/hint.h"

#include "shared/util/coding.h"
#include "shared/util/names.h"

namespace dfs {

Key HintMac(const Key& record_key, std::string_view target, std::string_view path,
            const Stamp& stamp) {
  Encoder e;
  e.Raw("dfs hint v1");
  e.Str(target);
  e.Str(path);
  e.U64(stamp.time_ns);
  e.U64(stamp.random);
  const std::string data = e.Take();
  return HmacSha256(record_key,
                    std::span(reinterpret_cast<const uint8_t*>(data.data()), data.size()));
}

Hint MakeHint(const Key& record_key, std::string target, std::string path, const Stamp& stamp) {
  Hint h;
  h.mac = HintMac(record_key, target, path, stamp);
  h.target = std::move(target);
  h.path = std::move(path);
  h.stamp = stamp;
  return h;
}

bool VerifyHint(const Key& record_key, const Hint& hint) {
  return SecureEqual(HintMac(record_key, hint.target, hint.path, hint.stamp), hint.mac);
}

std::string HintId(const Hint& hint) { return ToHex(hint.mac); }

Status ValidateHint(const Hint& hint) {
  if (Status st = ValidateName(hint.target); !st.ok())
    return Status::Invalid("hint target: " + st.message());
  if (hint.path.empty()) return Status::Invalid("hint of the root folder");
  DFS_ASSIGN_OR_RETURN(std::string normal, NormalizeDir(hint.path));
  if (normal != hint.path) return Status::Invalid("hint path not in normal form");
  return Status::Ok();
}

}  // namespace dfs
