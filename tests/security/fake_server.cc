// The fake (malicious) server of the security suite (see fake_server.h).
#include "tests/security/fake_server.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <optional>
#include <stdexcept>

#include "shared/net/socket.h"
#include "shared/placement/placement.h"
#include "shared/protocol/auth.h"
#include "shared/protocol/messages.h"
#include "shared/util/names.h"
#include "tests/security/security_util.h"

namespace dfs::testing {

SealedFile SealFile(const UserKeys& keys, const std::string& name, const std::string& content,
                    uint32_t mode) {
  SealedFile f;
  f.name = name;
  Md5 md5;
  md5.Update(content.data(), content.size());
  const Digest16 digest = md5.Final();
  const uint64_t n = content.size();
  PieceHeader base;
  base.kind = PieceKind::kPiece;
  base.servers = 4;
  base.copies = 2;
  base.x = static_cast<uint8_t>(ResidueOf(digest, 4));
  base.cid = RandomCid();
  base.stamp = Stamp::Now();
  base.file_size = n;
  base.mtime_ns = static_cast<int64_t>(base.stamp.time_ns);
  base.mode = mode;
  base.chunk_bytes = kDefaultChunkBytes;
  base.uid = static_cast<uint32_t>(::getuid());
  base.gid = static_cast<uint32_t>(::getgid());
  for (int k = 1; k <= 4; ++k) {
    PieceHeader h = base;
    h.piece = static_cast<uint8_t>(k);
    h.piece_size = PieceSize(n, 4, k);
    h.Sign(keys.record, JoinName("", name));
    ChunkCipher cipher(keys.content, h.cid);
    const uint64_t offset = PieceOffset(n, 4, k);
    const uint64_t chunks = ChunkCount(h.piece_size, h.chunk_bytes);
    std::string sealed;
    for (uint64_t j = 0; j < chunks; ++j) {
      const uint64_t start = j * h.chunk_bytes;
      const uint64_t len = std::min<uint64_t>(h.chunk_bytes, h.piece_size - start);
      cipher.Seal(static_cast<uint32_t>(k), j, j + 1 == chunks,
                  std::span(reinterpret_cast<const uint8_t*>(content.data()) + offset + start,
                            static_cast<size_t>(len)),
                  &sealed);
    }
    f.headers.push_back(h);
    f.sealed.push_back(std::move(sealed));
  }
  return f;
}

FakeServer::FakeServer(std::string name, std::string user, const Key& verifier, Behavior behavior)
    : name_(std::move(name)), user_(std::move(user)), verifier_(verifier), behavior_(behavior) {
  auto tls = TlsServerContext::LoadOrCreate(key_dir_.path(), name_);
  if (!tls.ok()) throw std::runtime_error("fake server: " + tls.status().ToString());
  tls_ = std::move(tls).value();
  auto listener = ListenTcp("127.0.0.1", 0);
  if (!listener.ok()) throw std::runtime_error("fake server: " + listener.status().ToString());
  listener_ = std::move(listener).value();
  auto port = BoundPort(listener_.get());
  if (!port.ok()) throw std::runtime_error("fake server: " + port.status().ToString());
  port_ = *port;
  acceptor_ = std::thread(&FakeServer::AcceptLoop, this);
}

FakeServer::~FakeServer() {
  stop_ = true;
  acceptor_.join();
  std::vector<std::unique_ptr<Conn>> conns;
  {
    std::lock_guard lock(mu_);
    conns.swap(conns_);
  }
  for (auto& c : conns) ::shutdown(c->fd.get(), SHUT_RDWR);
  for (auto& c : conns) c->thread.join();
}

void FakeServer::AddRecord(const std::string& name, const PieceHeader& h, std::string sealed) {
  std::lock_guard lock(mu_);
  records_[name].push_back({h, std::move(sealed)});
}

void FakeServer::AddFile(const SealedFile& file) {
  for (size_t k = 0; k < file.headers.size(); ++k)
    AddRecord(file.name, file.headers[k], file.sealed[k]);
}

std::vector<FakeServer::Record> FakeServer::RecordsOf(const std::string& name) {
  std::lock_guard lock(mu_);
  auto it = records_.find(name);
  return it == records_.end() ? std::vector<Record>{} : it->second;
}

void FakeServer::AcceptLoop() {
  while (!stop_) {
    pollfd p{listener_.get(), POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    UniqueFd fd(::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!fd) continue;
    auto conn = std::make_unique<Conn>();
    conn->fd = std::move(fd);
    Conn* c = conn.get();
    std::lock_guard lock(mu_);
    conns_.push_back(std::move(conn));
    c->thread = std::thread(&FakeServer::Serve, this, c);
  }
}

void FakeServer::Serve(Conn* conn) {
  ServeLoop(conn);
  // The peer sees the end at once (the fd itself is closed by the destructor).
  ::shutdown(conn->fd.get(), SHUT_RDWR);
}

void FakeServer::ServeLoop(Conn* conn) {
  auto accepted = TlsChannel::Accept(conn->fd.get(), *tls_, DeadlineIn(Millis(5000)));
  if (!accepted.ok()) return;
  std::unique_ptr<TlsChannel> ch = std::move(accepted).value();
  Key client_nonce{}, server_nonce{};
  std::string hello_user;
  bool logged_in = false;
  while (!stop_) {
    Frame f;
    if (!RecvFrame(*ch, &f, DeadlineIn(Millis(120000)), kMaxControlBody).ok()) return;
    const uint32_t id = f.header.request_id;
    const Deadline deadline = DeadlineIn(Millis(10000));
    if (logged_in) {
      if (!Answer(*ch, f).ok()) return;
      continue;
    }
    if (f.type() == MsgType::kHello) {
      auto hello = DecodeMessage<HelloRequest>(f.body);
      if (!hello.ok()) return;
      hello_user = hello->user;
      client_nonce = hello->client_nonce;
      dfs::RandomBytes(server_nonce.data(), server_nonce.size());
      if (!SendMessage(*ch, MsgType::kReply, id, Challenge{server_nonce, name_}, deadline).ok())
        return;
    } else if (f.type() == MsgType::kProof) {
      auto proof = DecodeMessage<ProofRequest>(f.body);
      if (!proof.ok()) return;
      const Key expected =
          ClientProof(verifier_, ch->binding(), client_nonce, server_nonce, hello_user);
      if (hello_user != user_ || !SecureEqual(expected, proof->proof)) {
        (void)SendErrorFrame(
            *ch, id, Status::AuthFailed("Invalid Username/Password. Please try again."), deadline);
        return;
      }
      AuthOk ok{ServerProof(verifier_, ch->binding(), client_nonce, server_nonce, hello_user)};
      if (!SendMessage(*ch, MsgType::kReply, id, ok, deadline).ok()) return;
      logged_in = true;
      ++logins_;
    } else {
      (void)SendErrorFrame(*ch, id, Status::Permission("not authenticated"), deadline);
      return;
    }
  }
}

Status FakeServer::Answer(TlsChannel& ch, const Frame& f) {
  const uint32_t id = f.header.request_id;
  auto deadline = [] { return DeadlineIn(Millis(10000)); };
  const auto started = Clock::now();
  auto go_on = [&] {
    return !stop_ && Clock::now() - started < std::chrono::seconds(kEndlessSeconds);
  };
  auto send = [&](MsgType type, const std::string& body) {
    bytes_sent_ += body.size();
    return SendFrame(ch, type, id, body, deadline());
  };
  switch (f.type()) {
    case MsgType::kPing:
      return SendMessage(ch, MsgType::kReply, id, Empty{}, deadline());
    case MsgType::kStatFs:
      return SendMessage(
          ch, MsgType::kReply, id,
          StatFsReply{uint64_t{1} << 40, uint64_t{1} << 39, uint64_t{1} << 39, 1000, 500},
          deadline());
    case MsgType::kList: {
      auto req = DecodeMessage<ListRequest>(f.body);
      if (!req.ok()) return req.status();
      if (behavior_.endless_list) {
        // As many entries as one control frame holds, again and again.
        using Entries = Behavior::Entries;
        std::vector<ListEntry> genuine;
        {
          std::lock_guard lock(mu_);
          for (const auto& [name, records] : records_)
            for (const auto& r : records) genuine.push_back({name, false, r.header});
        }
        if (genuine.empty()) return Status::Invalid("endless_list needs a record");
        ListReply reply;
        reply.more = true;
        const size_t name_bytes = std::clamp<size_t>(behavior_.list_name_bytes, 7, 251);
        const bool folders = behavior_.list_entries == Entries::kFolders;
        size_t room = kMaxControlBody - 5;
        for (size_t i = 0;; ++i) {
          ListEntry e;
          if (behavior_.list_entries == Entries::kReplayed) {
            e = genuine[i % genuine.size()];
          } else {
            char number[16];
            std::snprintf(number, sizeof number, "%06zu", i % 1000000);
            e.name = std::string(name_bytes - 6, 'e') + number;
            e.is_dir = folders;
            e.header = genuine.front().header;
          }
          const size_t bytes = 2 + e.name.size() + 1 + (e.is_dir ? 0 : kPieceHeaderBytes);
          if (bytes > room) break;
          room -= bytes;
          reply.entries.push_back(std::move(e));
        }
        const std::string body = EncodeMessage(reply);
        while (go_on()) DFS_RETURN_IF_ERROR(send(MsgType::kReply, body));
        return Status::Ok();
      }
      if (!req->dir.empty())
        return SendErrorFrame(ch, id, Status::NotFound("no such directory"), deadline());
      ListReply reply;
      {
        std::lock_guard lock(mu_);
        for (const auto& [name, records] : records_)
          for (const auto& r : records) reply.entries.push_back({name, false, r.header});
      }
      return send(MsgType::kReply, EncodeMessage(reply));
    }
    case MsgType::kStat: {
      auto req = DecodeMessage<StatRequest>(f.body);
      if (!req.ok()) return req.status();
      auto records = RecordsOf(req->name);
      if (!req->dir.empty() || records.empty())
        return SendErrorFrame(ch, id, Status::NotFound("no such file"), deadline());
      StatReply reply;
      for (const auto& r : records) reply.pieces.push_back(r.header);
      return send(MsgType::kReply, EncodeMessage(reply));
    }
    case MsgType::kGet: {
      auto req = DecodeMessage<GetRequest>(f.body);
      if (!req.ok()) return req.status();
      std::optional<Record> found;
      for (auto& r : RecordsOf(req->name))
        if (!r.header.tombstone() && r.header.piece == req->piece && r.header.cid == req->cid &&
            !r.sealed.empty())
          found = std::move(r);
      if (!req->dir.empty() || !found)
        return SendErrorFrame(ch, id, Status::NotFound("no such piece"), deadline());
      const uint64_t size = found->sealed.size();
      const uint64_t offset = std::min(req->offset, size);
      const uint64_t length = std::min(req->length, size - offset);
      DFS_RETURN_IF_ERROR(
          send(MsgType::kReply, EncodeMessage(GetReply{found->header, offset, length})));
      if (behavior_.empty_frames) {
        // Never more than announced, never an end: only a deadline on the
        // whole transfer stops this.
        while (go_on()) {
          DFS_RETURN_IF_ERROR(send(MsgType::kData, ""));
          std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
        return Status::Ok();
      }
      for (uint64_t pos = offset; pos < offset + length;) {
        const uint64_t n = std::min<uint64_t>(kMaxDataBody, offset + length - pos);
        DFS_RETURN_IF_ERROR(send(MsgType::kData, found->sealed.substr(pos, n)));
        pos += n;
      }
      if (behavior_.endless_get) {
        const std::string junk(kMaxDataBody, 'J');
        while (go_on()) DFS_RETURN_IF_ERROR(send(MsgType::kData, junk));
        return Status::Ok();
      }
      return SendFrame(ch, MsgType::kDataEnd, id, "", deadline());
    }
    default:
      return SendErrorFrame(ch, id, Status::Invalid("not supported by this server"), deadline());
  }
}

FakeCluster::FakeCluster(std::map<int, FakeServer::Behavior> behaviors) {
  std::string text;
  for (int i = 0; i < 4; ++i) {
    const std::string name = "DFS" + std::to_string(i + 1);
    servers_.push_back(std::make_unique<FakeServer>(
        name, kAlice, ServerVerifier(AliceKeys().auth, name),
        behaviors.count(i) ? behaviors.at(i) : FakeServer::Behavior{}));
    text += "Server " + name + " 127.0.0.1:" + std::to_string(servers_.back()->port()) + "\n";
  }
  text += std::string("Username: ") + kAlice + "\nPassword: " + kAlicePassword + "\n";
  for (const auto& s : servers_) text += "Fingerprint " + s->name() + " " + s->fingerprint() + "\n";
  text += "KnownServers " + (tmp_ / "known_servers") + "\n";
  conf_path_ = tmp_ / "dfc.conf";
  WriteFile(conf_path_, text);
}

void FakeCluster::AddFileEverywhere(const SealedFile& file) {
  for (auto& s : servers_) s->AddFile(file);
}

ClientConfig FakeCluster::Config() const {
  ClientConfig cfg;
  for (const auto& s : servers_)
    cfg.servers.push_back({s->name(), "127.0.0.1", s->port(), s->fingerprint()});
  cfg.username = kAlice;
  cfg.password = kAlicePassword;
  cfg.known_servers = tmp_ / "known_servers";
  return cfg;
}

}  // namespace dfs::testing
