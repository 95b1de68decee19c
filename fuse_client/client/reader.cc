// Reader: random reads of one file version for the mount. Only the chunks
// covering a request are fetched (plus read-ahead when access is sequential),
// each chunk once: concurrent readers wait for chunks already in flight.
#include <algorithm>
#include <cstring>
#include <system_error>
#include <thread>

#include "fuse_client/client/client.h"
#include "shared/util/names.h"

namespace dfs::client {

Result<std::unique_ptr<Reader>> Client::Open(const FileVersion& version,
                                             const InlinePieces& inline_pieces) {
  if (!version.exists)
    return Status::NotFound("no such file " + Escaped(JoinName(version.dir, version.name)));
  if (!version.complete()) return Status::Incomplete(kIncompleteMessage);
  return std::make_unique<Reader>(this, version, inline_pieces);
}

Result<std::string> Client::ReadSmall(const FileVersion& version,
                                      const InlinePieces& inline_pieces) {
  if (version.exists && version.size() > kMaxLinkBytes)
    return Status::Invalid(Escaped(JoinName(version.dir, version.name)) + " is too long a link");
  DFS_ASSIGN_OR_RETURN(std::unique_ptr<Reader> reader, Open(version, inline_pieces));
  std::string out(version.size(), '\0');
  DFS_ASSIGN_OR_RETURN(size_t n, reader->Read(0, out.size(), out.data()));
  if (n != out.size()) return Status::Corrupt("short read of a link");
  return out;
}

Status Client::OpenSealedPiece(const FileVersion& v, int piece, std::string_view sealed,
                               const ChunkSink& sink) const {
  const PieceHeader& meta = v.newest;
  const uint64_t piece_size = PieceSize(meta.file_size, meta.servers, piece);
  // The content; extended attributes may follow it (xattrs.h).
  const uint64_t data_size = SealedSize(piece_size, meta.chunk_bytes);
  if (sealed.size() < data_size || sealed.size() > data_size + kMaxXattrTrailerBytes)
    return Status::Corrupt("inline piece of the wrong length");
  const uint64_t chunks = ChunkCount(piece_size, meta.chunk_bytes);
  ChunkCipher cipher(keys_.content, meta.cid);
  std::vector<uint8_t> plain(meta.chunk_bytes);
  size_t pos = 0;
  for (uint64_t j = 0; j < chunks; ++j) {
    const uint64_t plain_len =
        std::min<uint64_t>(meta.chunk_bytes, piece_size - j * meta.chunk_bytes);
    const size_t need = static_cast<size_t>(plain_len + kTagBytes);
    DFS_RETURN_IF_ERROR(cipher.Open(
        static_cast<uint32_t>(piece), j, j + 1 == chunks,
        std::span(reinterpret_cast<const uint8_t*>(sealed.data()) + pos, need), plain.data()));
    pos += need;
    DFS_RETURN_IF_ERROR(sink(j, std::span<const uint8_t>(plain.data(), plain_len)));
  }
  return Status::Ok();
}

Reader::Reader(Client* client, FileVersion version, const InlinePieces& inline_pieces)
    : client_(client), version_(std::move(version)) {
  MutexLock lock(&mu_);  // not shared yet; the lock is for the analysis
  for (const auto& inline_piece : inline_pieces) {
    // Not a structured binding: clang 14 cannot capture one in the lambda.
    const int piece = inline_piece.first;
    const std::string& sealed = inline_piece.second;
    if (piece < 1 || piece > version_.pieces()) continue;
    std::map<ChunkKey, CachedChunk> chunks;
    Status opened = client_->OpenSealedPiece(
        version_, piece, sealed, [&](uint64_t j, std::span<const uint8_t> plain) {
          chunks[{piece, j}] = {std::make_shared<const std::string>(
                                    reinterpret_cast<const char*>(plain.data()), plain.size()),
                                0};
          return Status::Ok();
        });
    // One that does not decrypt is fetched from the servers as usual.
    if (!opened.ok()) continue;
    for (auto& chunk : chunks) chunk.second.used = ++tick_;
    cache_.merge(chunks);
  }
}

Reader::~Reader() {
  MutexLock lock(&mu_);
  while (jobs_ > 0) jobs_done_.Wait(&mu_);
}

Result<size_t> Reader::Read(uint64_t offset, size_t len, char* out) {
  const uint64_t size = version_.size();
  if (offset >= size || len == 0) return size_t{0};
  len = static_cast<size_t>(std::min<uint64_t>(len, size - offset));
  const size_t segment = size_t{version_.newest.chunk_bytes} * 8;
  size_t done = 0;
  while (done < len) {
    const size_t n = std::min(segment, len - done);
    DFS_ASSIGN_OR_RETURN(size_t got, ReadSegment(offset + done, n, out + done));
    if (got == 0) break;
    done += got;
  }
  return done;
}

Result<size_t> Reader::ReadSegment(uint64_t offset, size_t len, char* out) {
  const int pieces = version_.pieces();
  const uint64_t size = version_.size();

  const std::vector<Need> needs = ChunksCovering(offset, offset + len);

  MutexLock lock(&mu_);
  for (const Need& n : needs) ++pins_[n.key];
  const bool sequential = offset == next_offset_ && offset != 0;
  window_chunks_ = sequential ? std::min(window_chunks_ * 2, kMaxWindowChunks) : 1;
  next_offset_ = offset + len;
  for (;;) {
    std::map<int, std::pair<uint64_t, uint64_t>> claim;  // piece -> [first, last)
    bool waiting = false;
    for (const Need& n : needs) {
      if (cache_.count(n.key)) continue;
      if (inflight_.count(n.key)) {
        waiting = true;
        continue;
      }
      auto [it, fresh] = claim.try_emplace(n.key.first, n.key.second, n.key.second + 1);
      if (!fresh) {
        it->second.first = std::min(it->second.first, n.key.second);
        it->second.second = std::max(it->second.second, n.key.second + 1);
      }
    }
    if (claim.empty() && !waiting) break;
    if (claim.empty()) {
      fetched_.Wait(&mu_);
      continue;
    }
    // Read-ahead: extend each run past the request while the chunks are not
    // already cached or being fetched.
    for (auto& [piece, range] : claim) {
      const uint64_t chunks =
          ChunkCount(PieceSize(size, pieces, piece), version_.newest.chunk_bytes);
      for (uint64_t j = range.first; j < range.second; ++j) inflight_.insert({piece, j});
      const uint64_t limit = std::min(chunks, range.second + window_chunks_ - 1);
      while (range.second < limit && !cache_.count({piece, range.second}) &&
             !inflight_.count({piece, range.second})) {
        inflight_.insert({piece, range.second});
        ++range.second;
      }
    }
    lock.Unlock();
    std::vector<Status> results(claim.size());
    {
      std::vector<std::pair<int, std::pair<uint64_t, uint64_t>>> jobs(claim.begin(), claim.end());
      client_->RunAll(jobs.size(), [&](size_t i) {
        results[i] = Fetch(jobs[i].first, jobs[i].second.first, jobs[i].second.second);
      });
    }
    lock.Lock();
    for (const auto& [piece, range] : claim)
      for (uint64_t j = range.first; j < range.second; ++j) inflight_.erase({piece, j});
    fetched_.SignalAll();
    for (const Status& s : results) {
      if (!s.ok()) {
        Unpin(needs);
        return s;
      }
    }
  }
  // Every needed chunk is cached and the lock has been held since the check.
  size_t copied = 0;
  for (const Need& n : needs) {
    CachedChunk& c = cache_.at(n.key);
    c.used = ++tick_;
    const uint64_t from = std::max(offset, n.file_start);
    const uint64_t to = std::min(offset + len, n.file_start + c.plain->size());
    if (to <= from) continue;
    std::memcpy(out + (from - offset), c.plain->data() + (from - n.file_start), to - from);
    copied += static_cast<size_t>(to - from);
    // A sequential reader is done with a chunk it read to the end: it goes
    // first when the cache is full, before the chunks read ahead of it.
    if (sequential && to == n.file_start + c.plain->size()) c.used = 0;
  }
  Unpin(needs);
  if (sequential && window_chunks_ == kMaxWindowChunks) StartReadAhead(offset + len);
  return copied;
}

void Reader::StartReadAhead(uint64_t from) {
  const uint64_t until =
      std::min(version_.size(), from + kReadAheadChunks * version_.newest.chunk_bytes);
  // Runs of missing chunks in file order: (piece, first, last).
  struct Run {
    int piece;
    uint64_t first, last;
  };
  std::vector<Run> runs;
  for (const Need& n : ChunksCovering(from, until)) {
    const auto [k, j] = n.key;
    if (cache_.count(n.key) || inflight_.count(n.key)) continue;
    // A new run at a piece change, a gap, or the job size; jobs start at
    // multiples of the job size so alternate jobs go to alternate holders.
    if (runs.empty() || runs.back().piece != k || runs.back().last != j ||
        j % kReadAheadJobChunks == 0)
      runs.push_back({k, j, j + 1});
    else
      runs.back().last = j + 1;
  }
  for (const Run& r : runs) {
    if (jobs_ >= kMaxReadAheadJobs) break;
    const auto& holders = version_.holders[static_cast<size_t>(r.piece - 1)];
    if (holders.empty()) continue;
    const int server =
        holders[static_cast<size_t>((r.first / kReadAheadJobChunks) % holders.size())];
    try {
      std::thread job(&Reader::ReadAheadJob, this, r.piece, r.first, r.last, server);
      for (uint64_t j = r.first; j < r.last; ++j) inflight_.insert({r.piece, j});
      ++jobs_;
      job.detach();
    } catch (const std::system_error&) {
      break;  // no thread to be had: the reads fetch what they need themselves
    }
  }
}

void Reader::ReadAheadJob(int piece, uint64_t first, uint64_t last, int server) {
  // A failure is not reported: the read that needs a chunk fetches it again.
  (void)Fetch(piece, first, last, server);
  MutexLock lock(&mu_);
  for (uint64_t j = first; j < last; ++j) inflight_.erase({piece, j});
  --jobs_;
  fetched_.SignalAll();
  jobs_done_.SignalAll();
}

std::vector<Reader::Need> Reader::ChunksCovering(uint64_t from, uint64_t to) const {
  const int pieces = version_.pieces();
  const uint64_t size = version_.size();
  const uint64_t chunk = version_.newest.chunk_bytes;
  std::vector<Need> out;
  for (uint64_t pos = from; pos < to;) {
    int k = 1;
    while (k < pieces && PieceOffset(size, pieces, k + 1) <= pos) ++k;
    const uint64_t poff = PieceOffset(size, pieces, k);
    const uint64_t psize = PieceSize(size, pieces, k);
    const uint64_t j = (pos - poff) / chunk;
    const uint64_t start = poff + j * chunk;
    out.push_back({{k, j}, start});
    pos = std::min(poff + psize, start + chunk);
  }
  return out;
}

void Reader::Unpin(const std::vector<Need>& needs) {
  for (const Need& n : needs)
    if (--pins_[n.key] == 0) pins_.erase(n.key);
}

Status Reader::Fetch(int piece, uint64_t first, uint64_t last, int server) {
  if (server < 0 || !client_->pool().MaybeUp(server))
    server = client_->PreferredHolder(version_, piece);
  return client_->ReadChunks(
      version_, piece, first, last, server, [&](uint64_t j, std::span<const uint8_t> plain) {
        auto data = std::make_shared<const std::string>(reinterpret_cast<const char*>(plain.data()),
                                                        plain.size());
        MutexLock lock(&mu_);
        cache_[{piece, j}] = {std::move(data), ++tick_};
        fetched_.SignalAll();  // a read may be waiting for this very chunk
        while (cache_.size() > kCacheChunks) {
          auto victim = cache_.end();
          for (auto it = cache_.begin(); it != cache_.end(); ++it)
            if (!pins_.count(it->first) &&
                (victim == cache_.end() || it->second.used < victim->second.used))
              victim = it;
          if (victim == cache_.end()) break;  // everything is pinned by active reads
          cache_.erase(victim);
        }
        return Status::Ok();
      });
}

}  // namespace dfs::client
