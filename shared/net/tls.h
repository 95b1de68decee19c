// TLS 1.3 (OpenSSL) for every dfs connection.
//
// Each server has a long-term Ed25519 key of its own, generated on first
// start and kept in DIR/.identity/key.pem (folder 0700, file 0600; usernames
// never start with '.', so no user can reach it). A self-signed certificate is
// made from it at every start: clients do not check names or chains, they
// check the key itself by its fingerprint, "SHA256:" + base64 (no padding) of
// the SHA-256 of the DER SubjectPublicKeyInfo (as ssh prints host keys).
//
// Key exchange is ephemeral (X25519 first: forward secrecy); session tickets
// are off, so every connection is a full handshake with a fresh exchange.
// After the handshake, both sides derive the same 32-byte channel binding
// (RFC 8446 exporter, label "EXPORTER-dfs-channel-binding"); the login proofs
// (protocol/auth.h) are bound to it.
//
// All I/O waits are poll()s bounded by a deadline, as in socket.h.
#pragma once

#include <openssl/ssl.h>

#include <atomic>
#include <memory>
#include <string>
#include <string_view>

#include "shared/crypto/crypto.h"
#include "shared/util/fd.h"
#include "shared/util/status.h"
#include "shared/util/time.h"

namespace dfs {

// The folder inside a server's DIR that holds its key.
inline constexpr char kIdentityDir[] = ".identity";

using SslCtxPtr = std::unique_ptr<SSL_CTX, void (*)(SSL_CTX*)>;

// The server side: the server's key, certificate and TLS settings.
// Immutable once made; any number of connections may use it at once.
class TlsServerContext {
 public:
  // Loads DIR/.identity/key.pem, or generates and stores it when missing
  // (*created = true). Errors: kPermission/kIoError from the disk, kCorrupt
  // for a key file OpenSSL cannot read.
  static Result<std::unique_ptr<TlsServerContext>> LoadOrCreate(const std::string& dir,
                                                                std::string_view server_name,
                                                                bool* created = nullptr);
  SSL_CTX* get() const { return ctx_.get(); }
  const std::string& fingerprint() const { return fingerprint_; }

  explicit TlsServerContext(SslCtxPtr ctx, std::string fingerprint)
      : ctx_(std::move(ctx)), fingerprint_(std::move(fingerprint)) {}

 private:
  SslCtxPtr ctx_;
  std::string fingerprint_;
};

// The fingerprint of the key in DIR, without starting anything. kNotFound
// when DIR has no key yet.
Result<std::string> FingerprintOfDir(const std::string& dir);

// The client side: TLS 1.3 only, any certificate accepted by OpenSSL (the
// caller checks the peer's fingerprint after the handshake).
class TlsClientContext {
 public:
  static Result<std::unique_ptr<TlsClientContext>> Create();
  SSL_CTX* get() const { return ctx_.get(); }
  explicit TlsClientContext(SslCtxPtr ctx) : ctx_(std::move(ctx)) {}

 private:
  SslCtxPtr ctx_;
};

// One TLS connection over a connected TCP socket. One thread at a time
// (the only exception: Interrupt() may be called from any thread).
class TlsChannel {
 public:
  // Runs the client handshake before the deadline. Owns fd.
  static Result<std::unique_ptr<TlsChannel>> Connect(UniqueFd fd, const TlsClientContext& ctx,
                                                     Deadline deadline);
  // Runs the server handshake before the deadline. Does not own fd (the
  // caller closes it after the channel is gone).
  static Result<std::unique_ptr<TlsChannel>> Accept(int fd, const TlsServerContext& ctx,
                                                    Deadline deadline);
  ~TlsChannel();
  TlsChannel(const TlsChannel&) = delete;
  TlsChannel& operator=(const TlsChannel&) = delete;

  // Sends/receives exactly n bytes before the deadline. A closed connection is
  // kUnavailable, an expired deadline kTimeout, a record that fails
  // authentication (tampering) or any other TLS error kProtocol.
  Status Write(const void* data, size_t n, Deadline deadline);
  Status Read(void* data, size_t n, Deadline deadline);

  // Waits until bytes can be read (already decrypted, or on the socket): Ok;
  // stop_fd readable: kCancelled; timeout: kTimeout. stop_fd may be -1.
  Status WaitReadable(int stop_fd, Millis timeout);
  // Nothing unread and the peer has not closed: an idle connection that may be reused.
  bool LooksIdle() const;

  // The channel binding (see above).
  const Key& binding() const { return binding_; }
  // The peer's key fingerprint (client side; "" on the server side).
  const std::string& peer_fingerprint() const { return peer_fingerprint_; }
  int fd() const { return fd_; }
  // Makes every blocked and future operation fail at once (shutdown(2) of
  // the socket). Thread-safe.
  void Interrupt();
  // From now on, adds the bytes read and written (TLS payload) to these
  // counters (either may be null). For a server's metrics.
  void CountInto(std::atomic<uint64_t>* read, std::atomic<uint64_t>* written) {
    read_count_ = read;
    write_count_ = written;
  }

 private:
  TlsChannel(SSL* ssl, int fd, UniqueFd owned);
  Status Finish(Deadline deadline, bool client);
  Status Wait(int ssl_error, Deadline deadline, const char* what);

  SSL* ssl_;
  int fd_;
  UniqueFd owned_;
  Key binding_{};
  std::string peer_fingerprint_;
  std::atomic<uint64_t>* read_count_ = nullptr;
  std::atomic<uint64_t>* write_count_ = nullptr;
};

}  // namespace dfs
