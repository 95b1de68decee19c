// One connection of dfs_server: handshake, dispatch, piece streams.
#include "dfs_server/session.h"

#include <poll.h>

#include <algorithm>
#include <utility>

#include "dfs_version.h"
#include "shared/util/log.h"
#include "shared/util/names.h"

namespace dfs::server {
namespace {

spdlog::logger& Log() {
  static const std::shared_ptr<spdlog::logger> logger = Logger("net");
  return *logger;
}

// ListReply frames stay well under kMaxControlBody.
constexpr size_t kListBatchBytes = 60 * 1024;
// A kError sent just before closing must not hold the thread for long.
constexpr Millis kFarewellTimeout{1000};

// Encoded size of one ListEntry (messages.h).
size_t EncodedSize(const ListEntry& e) {
  return 2 + e.name.size() + 1 + (e.is_dir ? sizeof(uint32_t) : kPieceHeaderBytes);
}

}  // namespace

// ---- AuthKeys ----

AuthKeys::AuthKeys() { RandomBytes(dummy_.data(), dummy_.size()); }

Result<AuthKeys> AuthKeys::FromConfig(const ServerConfig& config, std::string_view origin,
                                      std::string_view server_name, int* plain_users) {
  AuthKeys keys;
  if (plain_users) *plain_users = 0;
  for (const auto& [user, secret] : config.users) {
    bool plain = false;
    auto key = VerifierFromSecret(user, secret, server_name, &plain);
    if (!key.ok())
      return Status::Invalid(std::string(origin) + ": user '" + user +
                             "': " + key.status().message());
    if (plain && plain_users) ++*plain_users;
    keys.keys_.emplace(user, *key);
  }
  return keys;
}

const Key& AuthKeys::KeyFor(std::string_view user, bool* known) const {
  auto it = keys_.find(user);
  *known = it != keys_.end();
  return *known ? it->second : dummy_;
}

// ---- Session ----

Session::Session(TlsChannel& channel, Store& store, const AuthKeys& keys, int stop_fd,
                 const SessionOptions& options, std::string peer, Deadline login_deadline,
                 AdmitFn admit)
    : ch_(channel),
      store_(store),
      keys_(keys),
      stop_fd_(stop_fd),
      options_(options),
      peer_(std::move(peer)),
      login_deadline_(login_deadline),
      admit_(std::move(admit)) {}

void Session::Run() {
  Frame frame;
  for (;;) {
    // Before login the whole conversation has one short deadline and tiny
    // frames: unauthenticated sockets cost little and cannot linger.
    const bool in_login = user_.empty();
    const Millis wait = in_login ? Millis(RemainingMs(login_deadline_)) : options_.idle_timeout;
    Status waited = ch_.WaitReadable(stop_fd_, wait);
    if (!waited.ok()) {
      Log().debug(
          "{}: closing: {}", peer_,
          in_login && waited.code() == Code::kTimeout ? "login timed out" : waited.ToString());
      return;
    }
    Status got = in_login ? RecvFrame(ch_, &frame, login_deadline_, kMaxHandshakeBody)
                          : RecvFrame(ch_, &frame, DeadlineIn(options_.io_timeout));
    if (!got.ok()) {
      if (got.code() == Code::kProtocol) {
        Log().warn("{}: malformed frame, closing: {}", peer_, got.message());
        (void)Violation(0, got);
      } else {
        Log().debug("{}: connection ended: {}", peer_, got.ToString());
      }
      return;
    }
    Status handled = user_.empty() ? Handshake(frame) : Dispatch(frame);
    if (!handled.ok()) {
      if (handled.code() == Code::kProtocol)
        Log().warn("{}: protocol violation, closing: {}", peer_, handled.message());
      else
        Log().info("{}: closing: {}", peer_, handled.ToString());
      return;
    }
  }
}

Status Session::Handshake(const Frame& f) {
  const uint32_t id = f.header.request_id;
  if (options_.metrics != nullptr) options_.metrics->CountRequest(f.type());
  switch (f.type()) {
    case MsgType::kHello: {
      if (hello_seen_) return Violation(id, Status::Protocol("second hello"));
      auto hello = DecodeMessage<HelloRequest>(f.body);
      if (!hello.ok()) return Violation(id, hello.status());
      hello_seen_ = true;
      hello_user_ = std::move(hello->user);
      client_nonce_ = hello->client_nonce;
      RandomBytes(server_nonce_.data(), server_nonce_.size());
      return Send(MsgType::kReply, id, Challenge{server_nonce_, options_.server_name});
    }
    case MsgType::kProof: {
      if (!hello_seen_) break;
      auto proof = DecodeMessage<ProofRequest>(f.body);
      if (!proof.ok()) return Violation(id, proof.status());
      bool known = false;
      const Key& key = keys_.KeyFor(hello_user_, &known);
      const Key expected =
          ClientProof(key, ch_.binding(), client_nonce_, server_nonce_, hello_user_);
      // Both checks always run: unknown user and wrong password look alike.
      const bool match = SecureEqual(expected, proof->proof);
      if (!known || !match) {
        Log().info("{}: authentication failed for user {}", peer_, Escaped(hello_user_, 64));
        if (options_.metrics != nullptr) options_.metrics->LoginFailed();
        // Slows down guessing; only a stop cuts the wait short.
        pollfd stop{stop_fd_, POLLIN, 0};
        (void)::poll(&stop, stop_fd_ >= 0 ? 1 : 0,
                     static_cast<int>(options_.auth_failure_delay.count()));
        Status failed = Status::AuthFailed(kAuthFailedMessage);
        (void)SendFrame(ch_, MsgType::kError, id, EncodeError(failed),
                        DeadlineIn(kFarewellTimeout));
        return failed;
      }
      if (Status admitted = admit_ ? admit_(hello_user_) : Status::Ok(); !admitted.ok()) {
        Log().warn("{}: user {} not admitted: {}", peer_, Escaped(hello_user_, 64),
                   admitted.message());
        (void)SendFrame(ch_, MsgType::kError, id, EncodeError(admitted),
                        DeadlineIn(kFarewellTimeout));
        return admitted;
      }
      if (Status s = store_.EnsureUser(hello_user_); !s.ok()) {
        Log().error("{}: cannot prepare the folder of user {}: {}", peer_, Escaped(hello_user_, 64),
                    s.ToString());
        (void)SendError(id, s);
        return s;
      }
      user_ = hello_user_;
      Log().info("{}: user {} authenticated", peer_, Escaped(user_, 64));
      return Send(MsgType::kReply, id,
                  AuthOk{ServerProof(key, ch_.binding(), client_nonce_, server_nonce_, user_)});
    }
    default:
      break;
  }
  Status refused = Status::Permission("not authenticated");
  (void)SendFrame(ch_, MsgType::kError, id, EncodeError(refused), DeadlineIn(kFarewellTimeout));
  return refused;
}

Status Session::Dispatch(const Frame& f) {
  Log().debug("{}: request type {} id {}", peer_, static_cast<int>(f.type()), f.header.request_id);
  if (options_.metrics != nullptr) options_.metrics->CountRequest(f.type());
  switch (f.type()) {
    case MsgType::kPing:
      return Simple<Empty>(f, [](const Empty&) { return Status::Ok(); });
    case MsgType::kList:
      return HandleList(f);
    case MsgType::kStat:
      return Simple<StatRequest>(f, [&](const StatRequest& r) -> Result<StatReply> {
        DFS_ASSIGN_OR_RETURN(StatReply reply, store_.Stat(user_, r.dir, r.name));
        if (r.inline_max > 0) AddInlinePiece(r, &reply);
        return reply;
      });
    case MsgType::kPutBegin:
      return HandlePut(f);
    case MsgType::kStage:
      return HandleStage(f);
    case MsgType::kCommit:
      return Simple<CommitRequest>(f, [&](const CommitRequest& r) -> Result<CommitReply> {
        DFS_ASSIGN_OR_RETURN(auto committed, store_.Commit(user_, r.dir, r.name, r.cid, r.stamp));
        return CommitReply{std::move(committed)};
      });
    case MsgType::kAbort:
      return Simple<AbortRequest>(
          f, [&](const AbortRequest& r) { return store_.Abort(user_, r.cid); });
    case MsgType::kGet:
      return HandleGet(f);
    case MsgType::kDelete:
      return Simple<DeleteRequest>(f, [&](const DeleteRequest& r) {
        return store_.Delete(user_, r.dir, r.name, r.tombstone);
      });
    case MsgType::kMkdir:
      return Simple<PathRequest>(f,
                                 [&](const PathRequest& r) { return store_.Mkdir(user_, r.path); });
    case MsgType::kRmdir:
      return Simple<PathRequest>(f,
                                 [&](const PathRequest& r) { return store_.Rmdir(user_, r.path); });
    case MsgType::kRename:
      return Simple<RenameRequest>(f, [&](const RenameRequest& r) {
        return store_.Rename(user_, r.from_dir, r.from_name, r.to_dir, r.to_name, r.cid, r.headers,
                             r.tombstone, r.xattrs);
      });
    case MsgType::kSetAttr:
      return Simple<SetAttrRequest>(
          f, [&](const SetAttrRequest& r) { return store_.SetAttr(user_, r); });
    case MsgType::kStatFs:
      return Simple<Empty>(f, [&](const Empty&) -> Result<StatFsReply> {
        DFS_ASSIGN_OR_RETURN(StatFsReply reply, store_.StatFs());
        reply.version = DFS_VERSION;
        return reply;
      });
    case MsgType::kPurge:
      return Simple<PurgeRequest>(f, [&](const PurgeRequest& r) {
        return store_.Purge(user_, r.dir, r.name, r.keep_cid, r.keep, r.drop_tombstone,
                            r.drop_pieces);
      });
    case MsgType::kHintAdd:
      return Simple<Hint>(f, [&](const Hint& r) { return store_.AddHint(user_, r); });
    case MsgType::kHintList:
      return Simple<HintListRequest>(f, [&](const HintListRequest& r) {
        return store_.ListHints(user_, r.target, r.after, kListBatchBytes);
      });
    case MsgType::kRevert:
      return Simple<RevertRequest>(f, [&](const RevertRequest& r) {
        return store_.Revert(user_, r.dir, r.name, r.failed, r.restore);
      });
    case MsgType::kHintDrop:
      return Simple<Hint>(f, [&](const Hint& r) { return store_.DropHint(user_, r); });
    case MsgType::kFolder:
      return Simple<FolderRequest>(f, [&](const FolderRequest& r) {
        return store_.SetFolder(user_, r.path, r.record, r.create);
      });
    default:
      break;
  }
  return Violation(
      f.header.request_id,
      Status::Protocol("unexpected message type " + std::to_string(static_cast<int>(f.type()))));
}

Status Session::HandleList(const Frame& f) {
  const uint32_t id = f.header.request_id;
  auto req = DecodeMessage<ListRequest>(f.body);
  if (!req.ok()) return Violation(id, req.status());
  ListReply batch;
  size_t batch_bytes = 5;  // more + entry count
  Status net;              // a failed send: the connection is gone
  Status listed = store_.List(user_, req->dir, [&](ListEntry&& entry) -> Status {
    const size_t bytes = EncodedSize(entry);
    if (!batch.entries.empty() && batch_bytes + bytes > kListBatchBytes) {
      batch.more = true;
      net = Send(MsgType::kReply, id, batch);
      if (!net.ok()) return net;
      batch.entries.clear();
      batch_bytes = 5;
    }
    batch.entries.push_back(std::move(entry));
    batch_bytes += bytes;
    return Status::Ok();
  });
  if (!net.ok()) return net;
  if (!listed.ok()) return SendError(id, listed);
  batch.more = false;
  return Send(MsgType::kReply, id, batch);
}

Status Session::HandlePut(const Frame& f) {
  const uint32_t id = f.header.request_id;
  auto req = DecodeMessage<PutBeginRequest>(f.body);
  if (!req.ok()) return Violation(id, req.status());
  auto staged = store_.BeginPut(user_, req->dir, req->name, req->header);
  if (!staged.ok()) return SendError(id, staged.status());  // the client sends no data
  DFS_RETURN_IF_ERROR(Send(MsgType::kReply, id, Empty{}));

  // The client streams kData frames and a kDataEnd. A write error is kept
  // and answered after kDataEnd, so the stream stays in step.
  Status write_error;
  Frame data;
  for (;;) {
    DFS_RETURN_IF_ERROR(RecvFrame(ch_, &data, DeadlineIn(options_.io_timeout)));
    if (data.type() == MsgType::kData) {
      if (!write_error.ok()) continue;
      write_error = staged->Append(data.body);
      if (!write_error.ok()) staged->Discard();
      if (write_error.ok() && options_.metrics != nullptr)
        options_.metrics->Staged(data.body.size());
      continue;
    }
    if (data.type() != MsgType::kDataEnd || !data.body.empty())
      return Violation(id, Status::Protocol("expected piece data"));
    break;
  }
  if (!write_error.ok()) {
    Log().warn("{}: put of {} failed: {}", peer_, Escaped(JoinName(req->dir, req->name)),
               write_error.ToString());
    return SendError(id, write_error);
  }
  Status finished = staged->Finish();
  if (!finished.ok()) {
    staged->Discard();
    return SendError(id, finished);
  }
  return Send(MsgType::kReply, id, Empty{});
}

Status Session::HandleStage(const Frame& f) {
  const uint32_t id = f.header.request_id;
  auto req = DecodeMessage<StageRequest>(f.body);
  if (!req.ok()) return Violation(id, req.status());
  if (req->headers.empty() || req->headers.size() > kMaxStagePieces)
    return Violation(id, Status::Protocol("a stage request names 1 to " +
                                          std::to_string(kMaxStagePieces) + " pieces"));
  // Sealed sizes are below 2^45 each (kMaxFileSize), so the sum cannot wrap.
  uint64_t total = 0;
  for (const PieceHeader& h : req->headers) total += h.sealed_size();

  // A refusal is kept and answered after kDataEnd: the client streams
  // without waiting, so the stream must be read to stay in step.
  Status error;
  std::vector<StagedPiece> staged;
  staged.reserve(req->headers.size());
  std::vector<bool> seen(kMaxStagePieces + 1);
  for (const PieceHeader& h : req->headers) {
    const PieceHeader& first = req->headers.front();
    if (h.cid != first.cid || h.stamp != first.stamp) {
      error = Status::Invalid("the pieces of a stage request belong to different uploads");
    } else if (h.piece >= 1 && h.piece <= kMaxStagePieces && seen[h.piece]) {
      error = Status::Invalid("piece " + std::to_string(h.piece) + " named twice");
    } else {
      auto piece = store_.BeginPut(user_, req->dir, req->name, h);
      if (piece.ok()) {
        if (h.piece <= kMaxStagePieces) seen[h.piece] = true;
        staged.push_back(std::move(piece).value());
        continue;
      }
      error = piece.status();
    }
    staged.clear();  // removes what was begun
    break;
  }

  uint64_t received = 0;
  size_t current = 0;  // the piece the next bytes belong to
  Frame data;
  for (;;) {
    DFS_RETURN_IF_ERROR(RecvFrame(ch_, &data, DeadlineIn(options_.io_timeout)));
    if (data.type() == MsgType::kDataEnd && data.body.empty()) break;
    if (data.type() != MsgType::kData || data.body.empty())
      return Violation(id, Status::Protocol("expected piece data"));
    if (data.body.size() > total - received)
      return Violation(id, Status::Protocol("more piece data than the headers announce"));
    received += data.body.size();
    if (!error.ok()) continue;
    std::string_view rest = data.body;
    while (!rest.empty() && current < staged.size()) {
      StagedPiece& piece = staged[current];
      const uint64_t room = piece.header().sealed_size() - piece.written();
      if (room == 0) {
        ++current;
        continue;
      }
      const size_t take = static_cast<size_t>(std::min<uint64_t>(room, rest.size()));
      error = piece.Append(rest.substr(0, take));
      if (!error.ok()) break;
      if (options_.metrics != nullptr) options_.metrics->Staged(take);
      rest.remove_prefix(take);
    }
    if (!error.ok()) staged.clear();
  }
  if (error.ok() && received != total)
    error = Status::Invalid("piece length mismatch: got " + std::to_string(received) + " of " +
                            std::to_string(total) + " bytes");
  for (StagedPiece& piece : staged) {
    if (!error.ok()) break;
    error = piece.Finish();
  }
  if (!error.ok()) {
    staged.clear();
    Log().info("{}: stage of {} failed: {}", peer_, Escaped(JoinName(req->dir, req->name)),
               error.ToString());
    return SendError(id, error);
  }
  return Send(MsgType::kReply, id, Empty{});
}

void Session::AddInlinePiece(const StatRequest& req, StatReply* reply) {
  const PieceHeader* newest = nullptr;
  for (const PieceHeader& h : reply->pieces)
    if (newest == nullptr || newest->stamp < h.stamp) newest = &h;
  if (newest == nullptr || newest->tombstone() || newest->servers == 0) return;
  std::vector<bool> held(kMaxStagePieces + 2);
  for (const PieceHeader& h : reply->pieces)
    if (!h.tombstone() && h.cid == newest->cid && h.piece >= 1 && h.piece <= newest->servers &&
        h.piece <= kMaxStagePieces)
      held[h.piece] = true;
  // The first piece of the run held here: its predecessor (cyclic) is not held.
  const int n = std::min<int>(newest->servers, kMaxStagePieces);
  int first = 0;
  for (int p = 1; p <= n && first == 0; ++p)
    if (held[p] && !held[p == 1 ? n : p - 1]) first = p;
  for (int p = 1; p <= n && first == 0; ++p)
    if (held[p]) first = p;
  if (first == 0) return;
  const uint32_t max = std::min(req.inline_max, kMaxInlineBytes);
  auto piece = store_.OpenPiece(user_, req.dir, req.name, first, newest->cid, 0, max);
  if (!piece.ok() || piece->header().sealed_size() > max) return;
  std::string data(static_cast<size_t>(piece->length()), '\0');
  if (!piece->ReadExact(piece->offset(), data.data(), data.size()).ok()) return;
  reply->inline_piece = static_cast<uint8_t>(first);
  reply->inline_data = std::move(data);
}

Status Session::HandleGet(const Frame& f) {
  const uint32_t id = f.header.request_id;
  auto req = DecodeMessage<GetRequest>(f.body);
  if (!req.ok()) return Violation(id, req.status());
  auto reader =
      store_.OpenPiece(user_, req->dir, req->name, req->piece, req->cid, req->offset, req->length);
  if (!reader.ok()) return SendError(id, reader.status());
  DFS_RETURN_IF_ERROR(
      Send(MsgType::kReply, id, GetReply{reader->header(), reader->offset(), reader->length()}));

  // One buffer of at most one data frame, for this request only.
  uint64_t pos = reader->offset();
  uint64_t left = reader->length();
  std::string buffer(static_cast<size_t>(std::min<uint64_t>(left, kMaxDataBody)), '\0');
  while (left > 0) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(left, buffer.size()));
    Status read = reader->ReadExact(pos, buffer.data(), n);
    if (!read.ok()) {
      // kError ends the stream; the connection stays usable.
      Log().warn("{}: get of {} piece {} failed: {}", peer_, Escaped(JoinName(req->dir, req->name)),
                 req->piece, read.ToString());
      return SendError(id, read);
    }
    DFS_RETURN_IF_ERROR(SendFrame(ch_, MsgType::kData, id, std::string_view(buffer.data(), n),
                                  DeadlineIn(options_.io_timeout)));
    pos += n;
    left -= n;
  }
  return SendFrame(ch_, MsgType::kDataEnd, id, "", DeadlineIn(options_.io_timeout));
}

template <typename Req, typename Fn>
Status Session::Simple(const Frame& f, Fn&& fn) {
  auto req = DecodeMessage<Req>(f.body);
  if (!req.ok()) return Violation(f.header.request_id, req.status());
  return Reply(f, fn(*req));
}

Status Session::Reply(const Frame& f, const Status& status) {
  if (!status.ok()) return SendError(f.header.request_id, status);
  return Send(MsgType::kReply, f.header.request_id, Empty{});
}

template <typename T>
Status Session::Reply(const Frame& f, const Result<T>& result) {
  if (!result.ok()) return SendError(f.header.request_id, result.status());
  return Send(MsgType::kReply, f.header.request_id, *result);
}

template <typename T>
Status Session::Send(MsgType type, uint32_t id, const T& msg) {
  return SendMessage(ch_, type, id, msg, DeadlineIn(options_.io_timeout));
}

Status Session::SendError(uint32_t id, const Status& status) {
  Log().debug("{}: request {} failed: {}", peer_, id, status.ToString());
  if (options_.metrics != nullptr) options_.metrics->CountError(status.code());
  return SendErrorFrame(ch_, id, status, DeadlineIn(options_.io_timeout));
}

Status Session::Violation(uint32_t id, Status why) {
  Status reply = why.code() == Code::kProtocol ? why : Status::Protocol(why.message());
  (void)SendFrame(ch_, MsgType::kError, id, EncodeError(reply), DeadlineIn(kFarewellTimeout));
  return reply;
}

}  // namespace dfs::server
