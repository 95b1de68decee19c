// Big-endian fixed-width encoding and a bounds-checked decoder for wire bodies
// and on-disk headers. Decoder never reads past its input and never allocates
// more than the caller's stated maximum.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace dfs {

inline void PutBE(uint8_t* p, uint64_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) {
    p[i] = static_cast<uint8_t>(v);
    v >>= 8;
  }
}
inline uint64_t GetBE(const uint8_t* p, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v = (v << 8) | p[i];
  return v;
}

// Appends to a growing byte string.
class Encoder {
 public:
  void U8(uint8_t v) { buf_.push_back(static_cast<char>(v)); }
  void U16(uint16_t v) { Fixed(v, 2); }
  void U32(uint32_t v) { Fixed(v, 4); }
  void U64(uint64_t v) { Fixed(v, 8); }
  void I64(int64_t v) { Fixed(static_cast<uint64_t>(v), 8); }
  void Bool(bool v) { U8(v ? 1 : 0); }
  // Raw bytes, no length prefix.
  void Raw(std::string_view bytes) { buf_.append(bytes); }
  // u16 length + bytes. REQUIRES: s.size() <= 65535.
  void Str(std::string_view s) {
    U16(static_cast<uint16_t>(s.size()));
    Raw(s);
  }
  // u32 length + bytes.
  void Bytes(std::string_view s) {
    U32(static_cast<uint32_t>(s.size()));
    Raw(s);
  }
  size_t size() const { return buf_.size(); }
  const std::string& data() const { return buf_; }
  std::string Take() { return std::move(buf_); }

 private:
  void Fixed(uint64_t v, int bytes) {
    uint8_t tmp[8];
    PutBE(tmp, v, bytes);
    buf_.append(reinterpret_cast<const char*>(tmp), static_cast<size_t>(bytes));
  }
  std::string buf_;
};

// Reads from a byte string it does not own. Every getter returns false (and
// leaves the decoder failed) when the input is short or a length exceeds `max`.
class Decoder {
 public:
  explicit Decoder(std::string_view in) : in_(in) {}

  bool U8(uint8_t* v) { return Fixed(v, 1); }
  bool U16(uint16_t* v) { return Fixed(v, 2); }
  bool U32(uint32_t* v) { return Fixed(v, 4); }
  bool U64(uint64_t* v) { return Fixed(v, 8); }
  bool I64(int64_t* v) {
    uint64_t u;
    if (!Fixed(&u, 8)) return false;
    *v = static_cast<int64_t>(u);
    return true;
  }
  bool Bool(bool* v) {
    uint8_t b;
    if (!U8(&b) || b > 1) return Fail();
    *v = b == 1;
    return true;
  }
  bool Raw(void* out, size_t n) {
    if (failed_ || in_.size() - pos_ < n) return Fail();
    std::memcpy(out, in_.data() + pos_, n);
    pos_ += n;
    return true;
  }
  bool Str(std::string* out, size_t max = 65535) {
    uint16_t n;
    return U16(&n) && Take(n, max, out);
  }
  bool Bytes(std::string* out, size_t max) {
    uint32_t n;
    return U32(&n) && Take(n, max, out);
  }
  bool done() const { return !failed_ && pos_ == in_.size(); }
  bool failed() const { return failed_; }
  size_t remaining() const { return in_.size() - pos_; }

 private:
  template <typename T>
  bool Fixed(T* v, int bytes) {
    if (failed_ || in_.size() - pos_ < static_cast<size_t>(bytes)) return Fail();
    *v = static_cast<T>(GetBE(reinterpret_cast<const uint8_t*>(in_.data()) + pos_, bytes));
    pos_ += static_cast<size_t>(bytes);
    return true;
  }
  bool Take(size_t n, size_t max, std::string* out) {
    if (failed_ || n > max || in_.size() - pos_ < n) return Fail();
    out->assign(in_.data() + pos_, n);
    pos_ += n;
    return true;
  }
  bool Fail() {
    failed_ = true;
    return false;
  }
  std::string_view in_;
  size_t pos_ = 0;
  bool failed_ = false;
};

}  // namespace dfs
