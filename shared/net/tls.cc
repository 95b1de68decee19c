// TLS 1.3 contexts, server identities and channels (see tls.h).
#include "shared/net/tls.h"

#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "shared/util/file_io.h"
#include "shared/util/log.h"

namespace dfs {
namespace {

constexpr char kKeyFile[] = "key.pem";
constexpr char kExporterLabel[] = "EXPORTER-dfs-channel-binding";

using PkeyPtr = std::unique_ptr<EVP_PKEY, void (*)(EVP_PKEY*)>;
using X509Ptr = std::unique_ptr<X509, void (*)(X509*)>;
using BioPtr = std::unique_ptr<BIO, int (*)(BIO*)>;

// The newest OpenSSL error of this thread as text (and clears the queue).
std::string SslErrorText() {
  unsigned long e = ERR_get_error();
  unsigned long next;
  while ((next = ERR_get_error()) != 0) e = next;
  if (e == 0) return "unknown TLS error";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  return buf;
}

std::string FingerprintOf(EVP_PKEY* key) {
  unsigned char* der = nullptr;
  const int len = i2d_PUBKEY(key, &der);
  if (len <= 0) return "";
  const Key digest = Sha256(std::span(der, static_cast<size_t>(len)));
  OPENSSL_free(der);
  return "SHA256:" + Base64NoPad(digest);
}

// Opens DIR/.identity (creating it 0700 when `create`).
Result<UniqueFd> OpenIdentityDir(const std::string& dir, bool create) {
  UniqueFd root(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!root) return FromErrno(errno, "cannot open " + dir);
  if (create && ::mkdirat(root.get(), kIdentityDir, 0700) != 0 && errno != EEXIST)
    return FromErrno(errno, "cannot create " + dir + "/" + kIdentityDir);
  UniqueFd id(::openat(root.get(), kIdentityDir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!id) return FromErrno(errno, "cannot open " + dir + "/" + kIdentityDir);
  return id;
}

Result<PkeyPtr> ReadKey(int id_fd, const std::string& shown) {
  UniqueFd fd(::openat(id_fd, kKeyFile, O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd) return FromErrno(errno, "cannot open " + shown);
  std::string pem(16384, '\0');
  DFS_ASSIGN_OR_RETURN(size_t n, PreadFull(fd.get(), pem.data(), pem.size(), 0, "read " + shown));
  if (n == pem.size()) return Status::Corrupt(shown + " is too large for a key");
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(n)), BIO_free);
  PkeyPtr key(bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr) : nullptr,
              EVP_PKEY_free);
  OPENSSL_cleanse(pem.data(), pem.size());
  if (!key)
    return Status::Corrupt(shown + " holds no private key OpenSSL can read: " + SslErrorText());
  return key;
}

// Generates an Ed25519 key and stores it as key.pem (0600) through a
// temporary file, fsync and rename, so a crash never leaves half a key.
Result<PkeyPtr> CreateKey(int id_fd, const std::string& shown) {
  PkeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"), EVP_PKEY_free);
  if (!key) return Status::IoError("cannot generate a key: " + SslErrorText());
  BioPtr bio(BIO_new(BIO_s_mem()), BIO_free);
  if (!bio ||
      PEM_write_bio_PrivateKey(bio.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1)
    return Status::IoError("cannot encode the key: " + SslErrorText());
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio.get(), &data);
  const std::string temp = std::string(kKeyFile) + ".tmp";
  ::unlinkat(id_fd, temp.c_str(), 0);
  {
    UniqueFd fd(::openat(id_fd, temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
    if (!fd) return FromErrno(errno, "cannot create " + shown);
    DFS_RETURN_IF_ERROR(WriteAll(fd.get(), data, static_cast<size_t>(len), "write " + shown));
    if (::fsync(fd.get()) != 0) return FromErrno(errno, "fsync " + shown);
  }
  if (::renameat(id_fd, temp.c_str(), id_fd, kKeyFile) != 0)
    return FromErrno(errno, "cannot store " + shown);
  ::fsync(id_fd);
  return key;
}

// A self-signed certificate for `key` (clients pin the key, not the certificate).
Result<X509Ptr> SelfSigned(EVP_PKEY* key, std::string_view name) {
  X509Ptr cert(X509_new(), X509_free);
  if (!cert) return Status::IoError("X509_new failed");
  uint64_t serial = 0;
  RandomBytes(&serial, sizeof serial);
  X509_set_version(cert.get(), 2);
  ASN1_INTEGER_set_uint64(X509_get_serialNumber(cert.get()), serial >> 1);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -86400L);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 100L * 365 * 86400);
  X509_NAME* subject = X509_get_subject_name(cert.get());
  const std::string cn = name.empty() ? "dfs_server" : std::string(name.substr(0, 64));
  X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_UTF8,
                             reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  X509_set_issuer_name(cert.get(), subject);
  X509_set_pubkey(cert.get(), key);
  if (X509_sign(cert.get(), key, nullptr) == 0)
    return Status::IoError("cannot sign the certificate: " + SslErrorText());
  return cert;
}

// Settings both sides share: TLS 1.3 only, no tickets, no compression.
void CommonSettings(SSL_CTX* ctx) {
  SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
  SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION);
  // Frames carry their lengths, so a peer that closes without close_notify
  // is an ordinary disconnect (kUnavailable), not an attack.
  SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET | SSL_OP_NO_COMPRESSION | SSL_OP_IGNORE_UNEXPECTED_EOF);
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  SSL_CTX_set1_groups_list(ctx, "X25519:P-256");
}

extern "C" int AcceptAnyCertificate(int, X509_STORE_CTX*) { return 1; }

// A socket BIO whose writes never raise SIGPIPE (send(2) with MSG_NOSIGNAL),
// so a peer that goes away cannot kill a process that did not ignore it.
extern "C" int NoSigpipeWrite(BIO* b, const char* data, int n) {
  int fd = -1;
  BIO_get_fd(b, &fd);
  errno = 0;
  const ssize_t r = ::send(fd, data, static_cast<size_t>(n), MSG_NOSIGNAL);
  BIO_clear_retry_flags(b);
  if (r < 0 && BIO_sock_should_retry(static_cast<int>(r))) BIO_set_retry_write(b);
  return static_cast<int>(r);
}

const BIO_METHOD* NoSigpipeSocketMethod() {
  static BIO_METHOD* method = [] {
    const BIO_METHOD* base = BIO_s_socket();
    BIO_METHOD* m = BIO_meth_new(BIO_TYPE_SOCKET, "dfs socket");
    BIO_meth_set_write(m, NoSigpipeWrite);
    BIO_meth_set_read(m, BIO_meth_get_read(base));
    BIO_meth_set_puts(m, BIO_meth_get_puts(base));
    BIO_meth_set_ctrl(m, BIO_meth_get_ctrl(base));
    BIO_meth_set_create(m, BIO_meth_get_create(base));
    BIO_meth_set_destroy(m, BIO_meth_get_destroy(base));
    return m;
  }();
  return method;
}

}  // namespace

Result<std::unique_ptr<TlsServerContext>> TlsServerContext::LoadOrCreate(
    const std::string& dir, std::string_view server_name, bool* created) {
  if (created) *created = false;
  const std::string shown = dir + "/" + kIdentityDir + "/" + kKeyFile;
  DFS_ASSIGN_OR_RETURN(UniqueFd id, OpenIdentityDir(dir, true));
  PkeyPtr key(nullptr, EVP_PKEY_free);
  struct stat st {};
  if (::fstatat(id.get(), kKeyFile, &st, AT_SYMLINK_NOFOLLOW) == 0) {
    if (!S_ISREG(st.st_mode))
      return Status::Permission("refusing " + shown + ": not a regular file");
    // A key others can read is tightened; if that fails, it is still used.
    if ((st.st_mode & 077) != 0 && ::fchmodat(id.get(), kKeyFile, 0600, 0) != 0)
      Logger("net")->warn("cannot make {} private: {}", shown, std::strerror(errno));
    DFS_ASSIGN_OR_RETURN(key, ReadKey(id.get(), shown));
  } else if (errno == ENOENT) {
    DFS_ASSIGN_OR_RETURN(key, CreateKey(id.get(), shown));
    if (created) *created = true;
  } else {
    return FromErrno(errno, "cannot stat " + shown);
  }
  DFS_ASSIGN_OR_RETURN(X509Ptr cert, SelfSigned(key.get(), server_name));
  SslCtxPtr ctx(SSL_CTX_new(TLS_server_method()), SSL_CTX_free);
  if (!ctx) return Status::IoError("SSL_CTX_new failed: " + SslErrorText());
  CommonSettings(ctx.get());
  SSL_CTX_set_num_tickets(ctx.get(), 0);
  if (SSL_CTX_use_certificate(ctx.get(), cert.get()) != 1 ||
      SSL_CTX_use_PrivateKey(ctx.get(), key.get()) != 1 ||
      SSL_CTX_check_private_key(ctx.get()) != 1)
    return Status::Corrupt("cannot use the key in " + shown + ": " + SslErrorText());
  return std::make_unique<TlsServerContext>(std::move(ctx), FingerprintOf(key.get()));
}

Result<std::string> FingerprintOfDir(const std::string& dir) {
  const std::string shown = dir + "/" + kIdentityDir + "/" + kKeyFile;
  DFS_ASSIGN_OR_RETURN(UniqueFd id, OpenIdentityDir(dir, false));
  DFS_ASSIGN_OR_RETURN(PkeyPtr key, ReadKey(id.get(), shown));
  return FingerprintOf(key.get());
}

Result<std::unique_ptr<TlsClientContext>> TlsClientContext::Create() {
  SslCtxPtr ctx(SSL_CTX_new(TLS_client_method()), SSL_CTX_free);
  if (!ctx) return Status::IoError("SSL_CTX_new failed: " + SslErrorText());
  CommonSettings(ctx.get());
  // The key is checked by fingerprint after the handshake; TLS still makes
  // the server prove it holds that key (CertificateVerify).
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, AcceptAnyCertificate);
  return std::make_unique<TlsClientContext>(std::move(ctx));
}

// ---- TlsChannel ----

TlsChannel::TlsChannel(SSL* ssl, int fd, UniqueFd owned)
    : ssl_(ssl), fd_(fd), owned_(std::move(owned)) {}

TlsChannel::~TlsChannel() { SSL_free(ssl_); }

Result<std::unique_ptr<TlsChannel>> TlsChannel::Connect(UniqueFd fd, const TlsClientContext& ctx,
                                                        Deadline deadline) {
  SSL* ssl = SSL_new(ctx.get());
  if (!ssl) return Status::IoError("SSL_new failed: " + SslErrorText());
  const int raw = fd.get();
  std::unique_ptr<TlsChannel> ch(new TlsChannel(ssl, raw, std::move(fd)));
  DFS_RETURN_IF_ERROR(ch->Finish(deadline, true));
  return ch;
}

Result<std::unique_ptr<TlsChannel>> TlsChannel::Accept(int fd, const TlsServerContext& ctx,
                                                       Deadline deadline) {
  SSL* ssl = SSL_new(ctx.get());
  if (!ssl) return Status::IoError("SSL_new failed: " + SslErrorText());
  std::unique_ptr<TlsChannel> ch(new TlsChannel(ssl, fd, UniqueFd()));
  DFS_RETURN_IF_ERROR(ch->Finish(deadline, false));
  return ch;
}

Status TlsChannel::Finish(Deadline deadline, bool client) {
  const int flags = ::fcntl(fd_, F_GETFL);
  if (flags < 0 || ::fcntl(fd_, F_SETFL, flags | O_NONBLOCK) != 0) return FromErrno(errno, "fcntl");
  BIO* bio = BIO_new(NoSigpipeSocketMethod());
  if (!bio) return Status::IoError("BIO_new failed: " + SslErrorText());
  BIO_set_fd(bio, fd_, BIO_NOCLOSE);
  SSL_set_bio(ssl_, bio, bio);
  if (client)
    SSL_set_connect_state(ssl_);
  else
    SSL_set_accept_state(ssl_);
  for (;;) {
    ERR_clear_error();
    const int r = SSL_do_handshake(ssl_);
    if (r == 1) break;
    DFS_RETURN_IF_ERROR(Wait(SSL_get_error(ssl_, r), deadline, "TLS handshake"));
  }
  if (SSL_export_keying_material(ssl_, binding_.data(), binding_.size(), kExporterLabel,
                                 sizeof kExporterLabel - 1, nullptr, 0, 0) != 1)
    return Status::Protocol("TLS exporter failed: " + SslErrorText());
  if (client) {
    X509* cert = SSL_get0_peer_certificate(ssl_);
    EVP_PKEY* key = cert ? X509_get0_pubkey(cert) : nullptr;
    if (!key) return Status::Protocol("the server presented no key");
    peer_fingerprint_ = FingerprintOf(key);
    if (peer_fingerprint_.empty()) return Status::Protocol("cannot read the server's key");
  }
  return Status::Ok();
}

// Handles the result of an SSL call that did not complete: waits for the
// socket when OpenSSL asks to, else turns the failure into a Status.
Status TlsChannel::Wait(int ssl_error, Deadline deadline, const char* what) {
  short events = 0;
  switch (ssl_error) {
    case SSL_ERROR_WANT_READ:
      events = POLLIN;
      break;
    case SSL_ERROR_WANT_WRITE:
      events = POLLOUT;
      break;
    case SSL_ERROR_ZERO_RETURN:
      return Status::Unavailable("connection closed by peer");
    case SSL_ERROR_SYSCALL: {
      const int err = errno;
      ERR_clear_error();
      if (err == 0 || err == EPIPE || err == ECONNRESET || err == ENOTCONN)
        return Status::Unavailable(std::string(what) + ": connection closed by peer");
      return FromErrno(err, what);
    }
    default:
      return Status::Protocol(std::string(what) + " failed: " + SslErrorText());
  }
  for (;;) {
    pollfd p{fd_, events, 0};
    const int r = ::poll(&p, 1, RemainingMs(deadline));
    if (r < 0) {
      if (errno == EINTR) continue;
      return FromErrno(errno, "poll");
    }
    if (r == 0) return Status::Timeout(std::string(what) + " timed out");
    return Status::Ok();
  }
}

Status TlsChannel::Write(const void* data, size_t n, Deadline deadline) {
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    ERR_clear_error();
    size_t written = 0;
    const int r = SSL_write_ex(ssl_, p, n, &written);
    if (r == 1) {
      if (write_count_ != nullptr) write_count_->fetch_add(written, std::memory_order_relaxed);
      p += written;
      n -= written;
      continue;
    }
    DFS_RETURN_IF_ERROR(Wait(SSL_get_error(ssl_, r), deadline, "send"));
  }
  return Status::Ok();
}

Status TlsChannel::Read(void* data, size_t n, Deadline deadline) {
  char* p = static_cast<char*>(data);
  while (n > 0) {
    ERR_clear_error();
    size_t got = 0;
    const int r = SSL_read_ex(ssl_, p, n, &got);
    if (r == 1) {
      if (read_count_ != nullptr) read_count_->fetch_add(got, std::memory_order_relaxed);
      p += got;
      n -= got;
      continue;
    }
    DFS_RETURN_IF_ERROR(Wait(SSL_get_error(ssl_, r), deadline, "receive"));
  }
  return Status::Ok();
}

Status TlsChannel::WaitReadable(int stop_fd, Millis timeout) {
  if (SSL_pending(ssl_) > 0) return Status::Ok();
  const Deadline deadline = DeadlineIn(timeout);
  for (;;) {
    pollfd p[2] = {{fd_, POLLIN, 0}, {stop_fd, POLLIN, 0}};
    const int r = ::poll(p, stop_fd >= 0 ? 2 : 1, RemainingMs(deadline));
    if (r < 0) {
      if (errno == EINTR) continue;
      return FromErrno(errno, "poll");
    }
    if (r == 0) return Status::Timeout("idle");
    if (stop_fd >= 0 && p[1].revents) return Status(Code::kCancelled, "stopping");
    return Status::Ok();
  }
}

bool TlsChannel::LooksIdle() const {
  if (SSL_pending(ssl_) > 0) return false;
  pollfd p{fd_, POLLIN, 0};
  return ::poll(&p, 1, 0) == 0;
}

void TlsChannel::Interrupt() { ::shutdown(fd_, SHUT_RDWR); }

}  // namespace dfs
