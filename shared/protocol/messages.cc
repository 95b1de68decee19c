// Error bodies (the rest of messages.h is header-only).
#include "shared/protocol/messages.h"

namespace dfs {

std::string EncodeError(const Status& status) {
  ErrorReply r;
  r.code = static_cast<uint8_t>(status.code());
  r.message = status.message().substr(0, 4096);
  return EncodeMessage(r);
}

Status DecodeError(std::string_view body) {
  auto r = DecodeMessage<ErrorReply>(body);
  if (!r.ok()) return r.status();
  if (r->code == 0 || r->code > kMaxCode)
    return Status::Protocol("error reply with invalid code " + std::to_string(r->code));
  return Status(static_cast<Code>(r->code), r->message);
}

}  // namespace dfs
