#include "common/diagnosis/listen_inventory.h"

#include <algorithm>

#include "common/model/tcp_state.h"

namespace tcpstates {
namespace {

ListenPort FromKey(uint32_t key, uint64_t sockets) {
  return {static_cast<Family>(key >> 16), static_cast<uint16_t>(key & 0xffff), sockets};
}

void SortByKey(std::vector<ListenPort>* ports) {
  std::sort(ports->begin(), ports->end(), [](const ListenPort& a, const ListenPort& b) {
    return a.family != b.family ? a.family < b.family : a.port < b.port;
  });
}

}  // namespace

void ListenInventory::Observe(const SocketRecord& record) {
  if (record.state != static_cast<uint8_t>(TcpState::kListen)) return;
  const Key key = KeyOf(record.family, record.local_port);
  if (previous_.contains(key)) {
    ++followed_[key];
    return;
  }
  if (auto it = candidates_.find(key); it != candidates_.end()) {
    ++it->second;
    return;
  }
  // New ports may take every place (followed ports are at most the previous report's,
  // which was within the cap); Finish() gives followed ports theirs first.
  if (candidates_.size() < max_ports_) {
    candidates_.emplace(key, 1);
  } else if (key < candidates_.rbegin()->first) {
    untracked_ += candidates_.rbegin()->second;
    candidates_.erase(std::prev(candidates_.end()));
    candidates_.emplace(key, 1);
  } else {
    ++untracked_;
  }
}

ListenReport ListenInventory::Finish() {
  ListenReport report;
  for (const auto& [key, sockets] : followed_) report.listening.push_back(FromKey(key, sockets));
  for (const auto& [key, sockets] : previous_) {
    if (!followed_.contains(key)) report.vanished.push_back(FromKey(key, sockets));
  }
  for (const auto& [key, sockets] : candidates_) {
    if (report.listening.size() < max_ports_) {
      report.listening.push_back(FromKey(key, sockets));
    } else {
      untracked_ += sockets;
    }
  }
  report.untracked_sockets = untracked_;
  SortByKey(&report.listening);
  SortByKey(&report.vanished);
  previous_.clear();
  for (const ListenPort& port : report.listening) {
    previous_.emplace(KeyOf(port.family, port.port), port.sockets);
  }
  Discard();
  return report;
}

void ListenInventory::Discard() {
  followed_.clear();
  candidates_.clear();
  untracked_ = 0;
}

}  // namespace tcpstates
