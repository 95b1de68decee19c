// See list_merge.h.
#include "fuse_client/client/list_merge.h"

#include <utility>

#include "shared/util/names.h"

namespace dfs::client {

ListMerge::ListMerge(int servers, size_t max_bytes, Sink sink)
    : max_bytes_(max_bytes), sink_(std::move(sink)), streams_(static_cast<size_t>(servers)) {}

Status ListMerge::Add(int s, std::vector<Record> records) {
  MutexLock lock(&mu_);
  Stream& st = streams_[static_cast<size_t>(s)];
  if (st.done) return Status::Protocol("listing continues after it ended");
  for (Record& r : records) {
    if (st.last && r.entry.name < *st.last) {
      return CutOff(
          st, "listing out of order: " + Escaped(r.entry.name) + " after " + Escaped(*st.last));
    }
    if (!st.last || *st.last != r.entry.name) {
      st.last = r.entry.name;
      st.last_records = 0;
    }
    if (++st.last_records > kMaxRecordsPerName)
      return CutOff(st, "listing repeats " + Escaped(r.entry.name));
    st.held_bytes += Weight(r);
    st.queue.push_back(std::move(r));
  }
  Drain();
  if (st.held_bytes + st.emitted_bytes > max_bytes_)
    return CutOff(st, "listing exceeds " + std::to_string(max_bytes_ >> 20) + " MiB");
  return Status::Ok();
}

Status ListMerge::CutOff(Stream& st, std::string why) {
  st.done = true;  // what it sent before still counts
  Drain();
  return Status::Protocol(std::move(why));
}

void ListMerge::Finish(int s) {
  MutexLock lock(&mu_);
  streams_[static_cast<size_t>(s)].done = true;
  Drain();
}

void ListMerge::Drain() {
  for (;;) {
    // The least name at the head of a queue...
    const std::string* least = nullptr;
    for (const Stream& st : streams_)
      if (!st.queue.empty() && (!least || st.queue.front().entry.name < *least))
        least = &st.queue.front().entry.name;
    if (!least) return;
    // ... is complete once no server still sending can send more of it.
    for (const Stream& st : streams_)
      if (!st.done && (!st.last || *st.last <= *least)) return;
    std::string name = *least;
    NameRecords out;
    for (size_t i = 0; i < streams_.size(); ++i) {
      Stream& st = streams_[i];
      const int server = static_cast<int>(i);
      if (!st.queue.empty() && st.queue.front().entry.name == name)
        st.emitted_bytes += kEmittedBytes + name.size();
      while (!st.queue.empty() && st.queue.front().entry.name == name) {
        Record& r = st.queue.front();
        st.held_bytes -= Weight(r);
        if (r.entry.is_dir) {
          out.dir_on.push_back(server);
          out.subdirs = std::max(out.subdirs, r.entry.subdirs);
        } else if (r.check != RecordCheck::kAccepted) {
          out.rejected.push_back({server, r.check});
        } else if (r.entry.header.folder()) {
          KeepNewest(&out.folder, r.entry.header);
        } else {
          out.headers.push_back({server, r.entry.header});
        }
        st.queue.pop_front();
      }
    }
    sink_(std::move(name), std::move(out));
  }
}

}  // namespace dfs::client
