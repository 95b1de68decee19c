// Hints of hinted handoff (DESIGN.md "Versions"; the Hint message is in
// shared/protocol/messages.h): what a client signs, and how a server names
// and checks the hints it keeps.
//
// A hint's MAC is HMAC-SHA256 under the user's record key over
//   "dfs hint v1" || u16 len || TARGET || u16 len || PATH || u64 time_ns || u64 random
// (big-endian), so a server cannot invent, alter or retarget a hint. A
// forged one would still only make a client read the records of a path,
// which are verified as always: hints never decide what a version is.
#pragma once

#include <string>
#include <string_view>

#include "shared/crypto/crypto.h"
#include "shared/protocol/messages.h"
#include "shared/util/status.h"

namespace dfs {

Key HintMac(const Key& record_key, std::string_view target, std::string_view path,
            const Stamp& stamp);
// A signed hint.
Hint MakeHint(const Key& record_key, std::string target, std::string path, const Stamp& stamp);
// Whether hint.mac is HintMac() of its fields. Constant time.
bool VerifyHint(const Key& record_key, const Hint& hint);
// The name a server keeps a hint under: its MAC in hex (64 characters).
std::string HintId(const Hint& hint);
// kInvalidArgument unless `target` is a valid name (names.h ValidateName)
// and `path` a valid, non-empty path in the user's space, in normal form.
Status ValidateHint(const Hint& hint);

}  // namespace dfs
