// Status and Result<T>: errors as values. The wire carries Code, never errno;
// errno enters through FromErrno() and leaves (at the FUSE boundary) through ToErrno().
#pragma once

#include <cassert>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace dfs {

// Stable numbers: they travel on the wire (protocol version 1). Append only.
enum class Code : uint8_t {
  kOk = 0,
  kNotFound = 1,
  kExists = 2,
  kNotEmpty = 3,
  kNotDir = 4,
  kIsDir = 5,
  kInvalidArgument = 6,
  kAuthFailed = 7,
  kPermission = 8,
  kIoError = 9,
  kProtocol = 10,
  kTimeout = 11,
  kUnavailable = 12,
  kNoSpace = 13,
  kCorrupt = 14,
  kIncomplete = 15,
  kTooLarge = 16,
  kBusy = 17,
  kStale = 18,
  kNameTooLong = 19,
  kCancelled = 20,
  kUntrusted = 21,  // a server's TLS key is not the one pinned or remembered
};
inline constexpr uint8_t kMaxCode = 21;

std::string_view CodeName(Code code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return {}; }
  static Status NotFound(std::string m) { return {Code::kNotFound, std::move(m)}; }
  static Status Exists(std::string m) { return {Code::kExists, std::move(m)}; }
  static Status NotEmpty(std::string m) { return {Code::kNotEmpty, std::move(m)}; }
  static Status NotDir(std::string m) { return {Code::kNotDir, std::move(m)}; }
  static Status IsDir(std::string m) { return {Code::kIsDir, std::move(m)}; }
  static Status Invalid(std::string m) { return {Code::kInvalidArgument, std::move(m)}; }
  static Status AuthFailed(std::string m) { return {Code::kAuthFailed, std::move(m)}; }
  static Status Permission(std::string m) { return {Code::kPermission, std::move(m)}; }
  static Status IoError(std::string m) { return {Code::kIoError, std::move(m)}; }
  static Status Protocol(std::string m) { return {Code::kProtocol, std::move(m)}; }
  static Status Timeout(std::string m) { return {Code::kTimeout, std::move(m)}; }
  static Status Unavailable(std::string m) { return {Code::kUnavailable, std::move(m)}; }
  static Status NoSpace(std::string m) { return {Code::kNoSpace, std::move(m)}; }
  static Status Corrupt(std::string m) { return {Code::kCorrupt, std::move(m)}; }
  static Status Incomplete(std::string m) { return {Code::kIncomplete, std::move(m)}; }
  static Status TooLarge(std::string m) { return {Code::kTooLarge, std::move(m)}; }
  static Status Stale(std::string m) { return {Code::kStale, std::move(m)}; }
  static Status NameTooLong(std::string m) { return {Code::kNameTooLong, std::move(m)}; }
  static Status Untrusted(std::string m) { return {Code::kUntrusted, std::move(m)}; }

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }
  // "NotFound: no such file 'a.txt'" (or "OK").
  std::string ToString() const;
  // Prefixes the message with context: "DFS2: " + message.
  Status Annotate(std::string_view context) const;

 private:
  Code code_ = Code::kOk;
  std::string message_;
};

// The one place errno becomes a Status. `what` names the operation and object.
Status FromErrno(int err, std::string_view what);

// Either a value or a non-OK Status.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : v_(std::in_place_index<1>, std::move(status)) {  // NOLINT
    assert(!std::get<1>(v_).ok());
  }

  bool ok() const { return v_.index() == 0; }
  const Status& status() const {
    static const Status kOkStatus;
    return ok() ? kOkStatus : std::get<1>(v_);
  }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace dfs

#define DFS_CONCAT_INNER_(a, b) a##b
#define DFS_CONCAT_(a, b) DFS_CONCAT_INNER_(a, b)

// Returns the Status from the enclosing function if `expr` is not OK.
#define DFS_RETURN_IF_ERROR(expr)              \
  do {                                         \
    ::dfs::Status dfs_status_ = (expr);        \
    if (!dfs_status_.ok()) return dfs_status_; \
  } while (0)

// `DFS_ASSIGN_OR_RETURN(auto x, Foo());` declares x from a Result or returns its Status.
#define DFS_ASSIGN_OR_RETURN(lhs, expr) \
  DFS_ASSIGN_OR_RETURN_IMPL_(DFS_CONCAT_(dfs_result_, __LINE__), lhs, expr)
#define DFS_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                               \
  if (!tmp.ok()) return tmp.status();              \
  lhs = std::move(tmp).value()
