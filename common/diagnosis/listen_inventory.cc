#include "common/diagnosis/listen_inventory.h"

#include <algorithm>

#include "common/model/tcp_state.h"

namespace tcpstates {
namespace {

void SortByKey(std::vector<ListenPort>* ports) {
  std::sort(ports->begin(), ports->end(), [](const ListenPort& a, const ListenPort& b) {
    return a.family != b.family ? a.family < b.family : a.port < b.port;
  });
}

// Of two queues, the fuller (ListenPort::fill; by length where backlogs are unknown, 0).
bool Fuller(uint32_t queue, uint32_t backlog, uint32_t than_queue, uint32_t than_backlog) {
  return static_cast<uint64_t>(queue) * (uint64_t{than_backlog} + 1) >
         static_cast<uint64_t>(than_queue) * (uint64_t{backlog} + 1);
}

constexpr size_t kSocketsRemembered = 4;  // per new port, to find its owners by

}  // namespace

void ListenInventory::Seen::Add(const SocketRecord& record, bool remember) {
  // A listener's receive queue is its accept queue, its send queue the backlog.
  if (sockets == 0 || Fuller(record.receive_queue, record.send_queue, queue, backlog)) {
    queue = record.receive_queue;
    backlog = record.send_queue;
  }
  ++sockets;
  if (remember && sockets_seen.size() < kSocketsRemembered) {
    sockets_seen.push_back({record.inode, record.cgroup_id});
  }
}

ListenPort ListenInventory::PortOf(Key key, const Seen& seen) {
  return {static_cast<Family>(key >> 16), static_cast<uint16_t>(key & 0xffff), seen.sockets,
          seen.queue, seen.backlog};
}

void ListenInventory::Observe(const SocketRecord& record) {
  if (record.state != static_cast<uint8_t>(TcpState::kListen)) return;
  const Key key = KeyOf(record.family, record.local_port);
  if (previous_.contains(key)) {
    followed_[key].Add(record, /*remember=*/false);
    return;
  }
  if (auto it = candidates_.find(key); it != candidates_.end()) {
    it->second.Add(record, /*remember=*/true);
    return;
  }
  // New ports may take every place (followed ports are at most the previous report's,
  // which was within the cap); Finish() gives followed ports theirs first.
  if (candidates_.size() >= max_ports_) {
    if (key > candidates_.rbegin()->first) {
      ++untracked_;
      return;
    }
    untracked_ += candidates_.rbegin()->second.sockets;
    candidates_.erase(std::prev(candidates_.end()));
  }
  candidates_[key].Add(record, /*remember=*/true);
}

ListenReport ListenInventory::Finish(absl::FunctionRef<void(NewListener&)> name_owners) {
  ListenReport report;
  for (const auto& [key, seen] : followed_) report.listening.push_back(PortOf(key, seen));
  for (const auto& [key, sockets] : previous_) {
    if (!followed_.contains(key)) {
      report.vanished.push_back(PortOf(key, Seen{.sockets = sockets}));
    }
  }
  for (auto& [key, seen] : candidates_) {
    if (report.listening.size() >= max_ports_) {
      untracked_ += seen.sockets;
      continue;
    }
    report.listening.push_back(PortOf(key, seen));
    if (have_previous_) {
      report.appeared.push_back({PortOf(key, seen), {}, std::move(seen.sockets_seen)});
    }
  }
  for (NewListener& listener : report.appeared) name_owners(listener);
  report.untracked_sockets = untracked_;
  SortByKey(&report.listening);
  SortByKey(&report.vanished);
  HashMap<Key, uint64_t> listening_now;
  for (const ListenPort& port : report.listening) {
    listening_now.emplace(KeyOf(port.family, port.port), port.sockets);
  }
  const absl::StatusOr<ListenCounters> counters = tcpstates::ReadListenCounters(proc_);
  // Nothing below allocates or throws: the reference for the next collection changes only
  // together with a complete report (an exception above, std::bad_alloc inside collectd,
  // leaves it as it was, and the caller discards this collection).
  if (counters.ok() && previous_counters_) {
    // Monotonic; a namespace created anew under the same reader would start over at 0.
    report.overflows = counters->overflows >= previous_counters_->overflows
                           ? counters->overflows - previous_counters_->overflows
                           : counters->overflows;
    report.drops = counters->drops >= previous_counters_->drops
                       ? counters->drops - previous_counters_->drops
                       : counters->drops;
  }
  previous_counters_ = counters.ok() ? std::optional<ListenCounters>(*counters) : std::nullopt;
  previous_.swap(listening_now);
  have_previous_ = true;
  Discard();
  return report;
}

void ListenInventory::Discard() {
  followed_.clear();
  candidates_.clear();
  untracked_ = 0;
}

}  // namespace tcpstates
