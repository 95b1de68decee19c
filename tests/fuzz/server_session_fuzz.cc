// Fuzz target: a server's side of one connection, from the bytes a client
// sends to what the Store does with them. The input is the stream of frames
// a client sends after the TLS handshake. It is served the way
// dfs_server/session.cc serves a connection: frames of at most
// kMaxHandshakeBody until the login, kHello then kProof (any proof passes:
// the fuzzer plays a client that knows the password), then requests decoded
// by type as Session::Dispatch does and run against a real Store
// (dfs_server/store.h) in a fresh folder on tmpfs, piece data streamed after
// kPutBegin as Session::HandlePut does. Session itself needs a TlsChannel,
// so this target repeats its small dispatch table instead of starting TLS,
// sockets or threads per input; keep the two in step.
//
// Properties: every reply the server would send is within the frame limit
// and decodes on the client to the same bytes (ListReply batches included);
// a request error is a Status the wire can carry; the Store never leaves a
// file under ROOT/USER that is not a valid directory or a piece file
// ".NAME.K" with a valid name, nor anything outside ROOT/USER,
// ROOT/.staging/USER and ROOT/.hints/USER, nor a symbolic link; every
// published piece file is its header (for that index) followed by exactly
// its sealed bytes; a commit's pieces are in place; the quota count equals
// the bytes on disk; every file under ROOT/.hints/USER/TARGET is a hint of
// valid form for TARGET named by its HintId(), an added hint is there and a
// dropped one gone; a hint listing is in order of id, after `after`, for
// the target asked.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>

#include "dfs_server/store.h"
#include "shared/format/hint.h"
#include "shared/format/piece_header.h"
#include "shared/net/socket.h"
#include "shared/protocol/messages.h"
#include "shared/util/log.h"
#include "shared/util/names.h"
#include "tests/fuzz/fuzz_util.h"

namespace dfs {
namespace {

namespace fs = std::filesystem;

// As dfs_server/session.cc.
constexpr size_t kListBatchBytes = 60 * 1024;
// A user with a quota, to run the ledger too; other users have none.
constexpr char kQuotaUser[] = "alice";
constexpr uint64_t kQuotaBytes = 256 * 1024;

// The Store's root for the current input: Base()/root.
std::string& Root() {
  static std::string root;
  return root;
}
std::string& Base() {
  static std::string base;
  return base;
}

void RemoveRoot() {
  std::error_code ec;
  if (!Root().empty()) fs::remove_all(Root(), ec);
}

void RemoveBase() {
  std::error_code ec;
  if (!Base().empty()) fs::remove_all(Base(), ec);
}

// A folder for the stores of this process: on tmpfs when there is one (fsync
// is free there), removed at exit.
void MakeRoot() {
  std::string dir = "/dev/shm";
  if (::access(dir.c_str(), W_OK) != 0) {
    const char* tmp = std::getenv("TMPDIR");
    dir = tmp && *tmp ? tmp : "/tmp";
  }
  std::string tmpl = dir + "/dfs_fuzz_session_XXXXXX";
  FUZZ_CHECK(::mkdtemp(tmpl.data()) != nullptr);
  Base() = tmpl;
  Root() = tmpl + "/root";
  std::atexit(RemoveBase);
}

// DFS_FUZZ_TRACE=1 prints every answer: to see how far an input gets.
bool Tracing() {
  static const bool on = std::getenv("DFS_FUZZ_TRACE") != nullptr;
  return on;
}

template <typename T>
void CheckReply(const T& msg) {
  const std::string body = EncodeMessage(msg);
  if (Tracing()) std::fprintf(stderr, "  -> reply of %zu bytes\n", body.size());
  FUZZ_CHECK(body.size() <= kMaxControlBody);
  Frame f;
  f.header = {MsgType::kReply, 1, static_cast<uint32_t>(body.size())};
  f.body = body;
  Result<T> got = ParseReply<T>(f);
  FUZZ_CHECK_OK(got.status());
  FUZZ_CHECK(EncodeMessage(*got) == body);
}

void CheckError(const Status& s) {
  if (Tracing()) std::fprintf(stderr, "  -> %s\n", s.ToString().c_str());
  FUZZ_CHECK(!s.ok());
  const Status back = DecodeError(EncodeError(s));
  FUZZ_CHECK(back.code() == s.code());
}

void Answer(const Status& s) {
  if (s.ok())
    CheckReply(Empty{});
  else
    CheckError(s);
}
template <typename T>
void Answer(const Result<T>& r) {
  if (r.ok())
    CheckReply(*r);
  else
    CheckError(r.status());
}

class Connection {
 public:
  Connection(server::Store& store, std::string_view in) : store_(store), in_(in) {}

  // The user logged in, or "".
  const std::string& user() const { return user_; }

  // Serves frames until the input ends or the server would close.
  void Run() {
    Frame f;
    for (;;) {
      const uint32_t limit = user_.empty() ? kMaxHandshakeBody : kMaxDataBody;
      const Status got = fuzz::ReadFrame(&in_, &f, limit);
      if (!got.ok()) {
        FUZZ_CHECK(got.code() == Code::kProtocol || got.code() == Code::kUnavailable);
        return;
      }
      if (Tracing())
        std::fprintf(stderr, "frame type %d, %zu bytes\n", static_cast<int>(f.type()),
                     f.body.size());
      if (!(user_.empty() ? Handshake(f) : Dispatch(f))) {
        if (Tracing()) std::fprintf(stderr, "  -> closed\n");
        return;
      }
    }
  }

 private:
  bool Handshake(const Frame& f) {
    if (f.type() == MsgType::kHello && !hello_seen_) {
      auto hello = DecodeMessage<HelloRequest>(f.body);
      if (!hello.ok()) return false;
      hello_seen_ = true;
      hello_user_ = hello->user;
      return true;
    }
    if (f.type() == MsgType::kProof && hello_seen_) {
      if (!DecodeMessage<ProofRequest>(f.body).ok()) return false;
      // Only users of dfs.conf can log in, and ParseServerConfig validates them.
      if (!ValidateName(hello_user_).ok() || hello_user_.front() == '.') return false;
      const Status ensured = store_.EnsureUser(hello_user_);
      FUZZ_CHECK_OK(ensured);
      user_ = hello_user_;
      return true;
    }
    return false;
  }

  template <typename Req, typename Fn>
  bool Simple(const Frame& f, Fn&& fn) {
    auto req = DecodeMessage<Req>(f.body);
    if (!req.ok()) return false;
    Answer(fn(*req));
    return true;
  }

  bool Dispatch(const Frame& f) {
    switch (f.type()) {
      case MsgType::kPing:
        return Simple<Empty>(f, [](const Empty&) { return Status::Ok(); });
      case MsgType::kList:
        return List(f);
      case MsgType::kStat:
        return Simple<StatRequest>(
            f, [&](const StatRequest& r) { return store_.Stat(user_, r.dir, r.name); });
      case MsgType::kPutBegin:
        return Put(f);
      case MsgType::kCommit:
        return Simple<CommitRequest>(f, [&](const CommitRequest& r) -> Result<CommitReply> {
          DFS_ASSIGN_OR_RETURN(auto done, store_.Commit(user_, r.dir, r.name, r.cid, r.stamp));
          CheckCommitted(r, done);
          return CommitReply{std::move(done)};
        });
      case MsgType::kAbort:
        return Simple<AbortRequest>(
            f, [&](const AbortRequest& r) { return store_.Abort(user_, r.cid); });
      case MsgType::kGet:
        return Get(f);
      case MsgType::kDelete:
        return Simple<DeleteRequest>(f, [&](const DeleteRequest& r) {
          return store_.Delete(user_, r.dir, r.name, r.tombstone);
        });
      case MsgType::kMkdir:
        return Simple<PathRequest>(
            f, [&](const PathRequest& r) { return store_.Mkdir(user_, r.path); });
      case MsgType::kRmdir:
        return Simple<PathRequest>(
            f, [&](const PathRequest& r) { return store_.Rmdir(user_, r.path); });
      case MsgType::kRename:
        return Simple<RenameRequest>(f, [&](const RenameRequest& r) {
          return store_.Rename(user_, r.from_dir, r.from_name, r.to_dir, r.to_name, r.cid,
                               r.headers, r.tombstone, r.xattrs);
        });
      case MsgType::kSetAttr:
        return Simple<SetAttrRequest>(
            f, [&](const SetAttrRequest& r) { return store_.SetAttr(user_, r); });
      case MsgType::kStatFs:
        return Simple<Empty>(f, [&](const Empty&) { return store_.StatFs(); });
      case MsgType::kPurge:
        return Simple<PurgeRequest>(f, [&](const PurgeRequest& r) {
          return store_.Purge(user_, r.dir, r.name, r.keep_cid, r.keep, r.drop_tombstone,
                              r.drop_pieces);
        });
      case MsgType::kHintAdd:
        return Simple<Hint>(f, [&](const Hint& r) {
          const Status added = store_.AddHint(user_, r);
          if (added.ok()) FUZZ_CHECK(HintStored(r));
          return added;
        });
      case MsgType::kHintList:
        return Simple<HintListRequest>(f, [&](const HintListRequest& r) {
          auto listed = store_.ListHints(user_, r.target, r.after, kListBatchBytes);
          if (listed.ok()) CheckHintList(r, *listed);
          return listed;
        });
      case MsgType::kRevert:
        return Simple<RevertRequest>(f, [&](const RevertRequest& r) {
          return store_.Revert(user_, r.dir, r.name, r.failed, r.restore);
        });
      case MsgType::kFolder:
        return Simple<FolderRequest>(f, [&](const FolderRequest& r) {
          return store_.SetFolder(user_, r.path, r.record, r.create);
        });
      case MsgType::kHintDrop:
        return Simple<Hint>(f, [&](const Hint& r) {
          const Status dropped = store_.DropHint(user_, r);
          if (dropped.ok()) FUZZ_CHECK(!HintStored(r));
          return dropped;
        });
      default:
        return false;  // "unexpected message type": closed
    }
  }

  // Whether ROOT/.hints/USER/TARGET/ID exists (as anything).
  bool HintStored(const Hint& h) const {
    std::error_code ec;
    return fs::exists(
        fs::symlink_status(fs::path(Root()) / ".hints" / user_ / h.target / HintId(h), ec));
  }

  // A listing holds hints for the target asked, after `after`, in strictly
  // increasing order of id, each of a form AddHint takes.
  static void CheckHintList(const HintListRequest& r, const HintListReply& reply) {
    std::string last = r.after;
    for (const Hint& h : reply.hints) {
      FUZZ_CHECK(h.target == r.target);
      FUZZ_CHECK_OK(ValidateHint(h));
      const std::string id = HintId(h);
      FUZZ_CHECK(id > last);
      last = id;
    }
    FUZZ_CHECK(!reply.more || !reply.hints.empty());
  }

  // The pieces a commit reports in place hold its content.
  void CheckCommitted(const CommitRequest& r, const std::vector<uint8_t>& done) {
    if (done.empty()) return;
    Result<StatReply> stat = store_.Stat(user_, r.dir, r.name);
    FUZZ_CHECK_OK(stat.status());
    for (uint8_t k : done) {
      FUZZ_CHECK(k >= 1 && k <= server::kMaxPieceIndex);
      FUZZ_CHECK(std::any_of(stat->pieces.begin(), stat->pieces.end(), [&](const PieceHeader& h) {
        return h.piece == k && !h.tombstone() && h.cid == r.cid;
      }));
    }
  }

  bool List(const Frame& f) {
    auto req = DecodeMessage<ListRequest>(f.body);
    if (!req.ok()) return false;
    ListReply batch;
    size_t batch_bytes = 5;
    const Status listed = store_.List(user_, req->dir, [&](ListEntry&& entry) -> Status {
      // Session's estimate of the entry's size must be exact, or batches overflow.
      const size_t bytes = EncodeMessage(entry).size();
      FUZZ_CHECK(bytes ==
                 2 + entry.name.size() + 1 + (entry.is_dir ? sizeof(uint32_t) : kPieceHeaderBytes));
      FUZZ_CHECK_OK(ValidateName(entry.name));
      if (!batch.entries.empty() && batch_bytes + bytes > kListBatchBytes) {
        batch.more = true;
        CheckReply(batch);
        batch.entries.clear();
        batch_bytes = 5;
      }
      batch.entries.push_back(std::move(entry));
      batch_bytes += bytes;
      return Status::Ok();
    });
    if (!listed.ok()) {
      CheckError(listed);
      return true;
    }
    batch.more = false;
    FUZZ_CHECK(EncodeMessage(batch).size() == batch_bytes);
    CheckReply(batch);
    return true;
  }

  bool Put(const Frame& f) {
    auto req = DecodeMessage<PutBeginRequest>(f.body);
    if (!req.ok()) return false;
    auto staged = store_.BeginPut(user_, req->dir, req->name, req->header);
    if (!staged.ok()) {
      CheckError(staged.status());
      return true;
    }
    Status write_error;
    Frame data;
    for (;;) {
      const Status got = fuzz::ReadFrame(&in_, &data, kMaxDataBody);
      if (!got.ok()) return false;  // the connection is gone; the staged piece goes too
      if (data.type() == MsgType::kData) {
        if (!write_error.ok()) continue;
        write_error = staged->Append(data.body);
        FUZZ_CHECK(staged->written() <= staged->header().sealed_size());
        if (!write_error.ok()) staged->Discard();
        continue;
      }
      if (data.type() != MsgType::kDataEnd || !data.body.empty()) return false;
      break;
    }
    if (!write_error.ok()) {
      CheckError(write_error);
      return true;
    }
    const Status finished = staged->Finish();
    if (!finished.ok())
      staged->Discard();
    else
      FUZZ_CHECK(staged->written() == staged->header().sealed_size());
    Answer(finished);
    return true;
  }

  bool Get(const Frame& f) {
    auto req = DecodeMessage<GetRequest>(f.body);
    if (!req.ok()) return false;
    auto reader = store_.OpenPiece(user_, req->dir, req->name, req->piece, req->cid, req->offset,
                                   req->length);
    if (!reader.ok()) {
      CheckError(reader.status());
      return true;
    }
    CheckReply(GetReply{reader->header(), reader->offset(), reader->length()});
    const uint64_t sealed = reader->header().sealed_size();
    FUZZ_CHECK(reader->offset() <= sealed && reader->length() <= sealed - reader->offset());
    FUZZ_CHECK(reader->length() <= req->length);
    uint64_t pos = reader->offset();
    uint64_t left = reader->length();
    std::string buffer(static_cast<size_t>(std::min<uint64_t>(left, kMaxDataBody)), '\0');
    while (left > 0) {
      const size_t n = static_cast<size_t>(std::min<uint64_t>(left, buffer.size()));
      // Only complete pieces are published: their bytes are all there.
      FUZZ_CHECK_OK(reader->ReadExact(pos, buffer.data(), n));
      pos += n;
      left -= n;
    }
    return true;
  }

  server::Store& store_;
  std::string_view in_;
  bool hello_seen_ = false;
  std::string hello_user_;
  std::string user_;
};

// Nothing but folders ROOT/.hints/USER/TARGET holding hints for TARGET,
// each named by its HintId(), in a form AddHint takes; no link.
void CheckHints(const std::string& user) {
  const fs::path hints = fs::path(Root()) / ".hints";
  FUZZ_CHECK(fs::is_directory(fs::symlink_status(hints)));
  for (const auto& e : fs::directory_iterator(hints)) {
    FUZZ_CHECK(!user.empty() && e.path().filename().string() == user);
    FUZZ_CHECK(fs::is_directory(fs::symlink_status(e.path())));
    for (const auto& t : fs::directory_iterator(e.path())) {
      const std::string target = t.path().filename().string();
      FUZZ_CHECK_OK(ValidateName(target));
      FUZZ_CHECK(fs::is_directory(fs::symlink_status(t.path())));
      for (const auto& file : fs::directory_iterator(t.path())) {
        FUZZ_CHECK(fs::is_regular_file(fs::symlink_status(file.path())));
        std::ifstream in(file.path(), std::ios::binary);
        const std::string raw((std::istreambuf_iterator<char>(in)),
                              std::istreambuf_iterator<char>());
        Result<Hint> h = DecodeMessage<Hint>(raw);
        FUZZ_CHECK_OK(h.status());
        FUZZ_CHECK_OK(ValidateHint(*h));
        FUZZ_CHECK(h->target == target);
        FUZZ_CHECK(HintId(*h) == file.path().filename().string());
      }
    }
  }
}

// Nothing but folders and piece files under ROOT/USER, nothing but files in
// ROOT/.staging/USER and ROOT/.retired/USER (replaced pieces kept for
// readers), only hints under ROOT/.hints (CheckHints), no link anywhere,
// nothing else under ROOT but the store's piece bound (a regular file).
void CheckTree(const std::string& user) {
  const fs::path root(Root());
  for (const auto& top : fs::directory_iterator(root)) {
    const std::string name = top.path().filename().string();
    if (name == ".max_piece") {
      FUZZ_CHECK(fs::is_regular_file(fs::symlink_status(top.path())));
      continue;
    }
    FUZZ_CHECK(name == ".staging" || name == ".hints" || name == ".retired" ||
               (!user.empty() && name == user));
  }
  CheckHints(user);
  for (const char* area : {".staging", ".retired"}) {
    FUZZ_CHECK(fs::is_directory(fs::symlink_status(root / area)));
    for (const auto& e : fs::directory_iterator(root / area)) {
      FUZZ_CHECK(!user.empty() && e.path().filename().string() == user);
      FUZZ_CHECK(fs::is_directory(fs::symlink_status(e.path())));
      for (const auto& f : fs::recursive_directory_iterator(e.path()))
        FUZZ_CHECK(f.is_regular_file() && !f.is_symlink());
    }
  }
  if (user.empty()) return;
  for (const auto& e : fs::recursive_directory_iterator(root / user)) {
    FUZZ_CHECK(!e.is_symlink());
    const std::string name = e.path().filename().string();
    if (e.is_directory()) {
      FUZZ_CHECK_OK(ValidateName(name));
      continue;
    }
    FUZZ_CHECK(e.is_regular_file());
    if (name == kFolderRecordFile) {
      // A folder's record: a folder record header alone.
      std::ifstream rec(e.path(), std::ios::binary);
      const std::string raw((std::istreambuf_iterator<char>(rec)),
                            std::istreambuf_iterator<char>());
      FUZZ_CHECK(raw.size() == kPieceHeaderBytes);
      Result<PieceHeader> h = PieceHeader::Decode(raw);
      FUZZ_CHECK_OK(h.status());
      FUZZ_CHECK(h->folder());
      continue;
    }
    std::string file;
    int piece = -1;
    FUZZ_CHECK(ParsePieceFileName(name, &file, &piece));
    FUZZ_CHECK(piece <= server::kMaxPieceIndex);
    // Only complete pieces are published: a header that decodes, for this
    // index, followed by exactly its sealed bytes.
    std::string head(kPieceHeaderBytes, '\0');
    std::ifstream in(e.path(), std::ios::binary);
    FUZZ_CHECK(in.read(head.data(), static_cast<std::streamsize>(head.size())).good());
    Result<PieceHeader> h = PieceHeader::Decode(head);
    FUZZ_CHECK_OK(h.status());
    FUZZ_CHECK(h->piece == piece);
    FUZZ_CHECK(e.file_size() == kPieceHeaderBytes + h->sealed_size());
  }
}

// What the quota counts for `user` (store.h): the piece and tombstone files
// under ROOT/USER and every file in ROOT/.staging/USER.
uint64_t DiskUsage(const std::string& user) {
  uint64_t bytes = 0;
  for (const fs::path& dir : {fs::path(Root()) / user, fs::path(Root()) / ".staging" / user}) {
    std::error_code ec;
    for (fs::recursive_directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
      if (it->is_regular_file() && it->path().filename() != kFolderRecordFile)
        bytes += it->file_size();  // folder records are not charged (store.h)
  }
  return bytes;
}

// A piece header whose whole file (header and sealed bytes) takes `bytes`.
PieceHeader ProbeHeader(uint64_t bytes) {
  PieceHeader h;
  h.servers = 1;
  h.copies = 1;
  h.piece = 1;
  h.chunk_bytes = 16u << 20;  // one chunk, one tag
  h.file_size = h.piece_size = bytes - kPieceHeaderBytes - kTagBytes;
  return h;
}

// The quota ledger agrees with the disk after any sequence of requests (one
// thread, nothing changed behind the Store's back): a put of exactly the
// room left is allowed, one byte more is refused. Too little counted would
// let a user past the quota; too much would refuse what fits.
void CheckQuota(server::Store& store, const std::string& user) {
  if (user != kQuotaUser) return;
  constexpr char kProbe[] = "quota-probe";
  std::error_code ec;
  if (fs::exists(fs::path(Root()) / user / kProbe, ec)) return;
  const uint64_t used = DiskUsage(user);
  if (Tracing())
    std::fprintf(stderr, "quota: %llu of %llu bytes used\n", static_cast<unsigned long long>(used),
                 static_cast<unsigned long long>(kQuotaBytes));
  constexpr uint64_t kSmallest = kPieceHeaderBytes + kTagBytes;
  if (used + kSmallest > kQuotaBytes) {
    auto refused = store.BeginPut(user, "", kProbe, ProbeHeader(kSmallest));
    FUZZ_CHECK(!refused.ok() && refused.status().code() == Code::kNoSpace);
    return;
  }
  const uint64_t room = kQuotaBytes - used;
  auto over = store.BeginPut(user, "", kProbe, ProbeHeader(room + 1));
  FUZZ_CHECK(!over.ok() && over.status().code() == Code::kNoSpace);
  auto fits = store.BeginPut(user, "", kProbe, ProbeHeader(room));
  FUZZ_CHECK_OK(fits.status());
}

}  // namespace
}  // namespace dfs

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  dfs::SetupLogging(spdlog::level::off);
  dfs::MakeRoot();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace dfs;
  RemoveRoot();
  server::StoreOptions options;
  options.quota_bytes.emplace(kQuotaUser, kQuotaBytes);
  options.reserve_bytes = 0;
  auto store = server::Store::Open(Root(), options);
  FUZZ_CHECK_OK(store.status());
  Connection conn(**store, fuzz::AsView(data, size));
  conn.Run();
  CheckTree(conn.user());
  CheckQuota(**store, conn.user());
  return 0;
}
