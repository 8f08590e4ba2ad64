#include "common/diagnosis/listen_inventory.h"

#include <algorithm>

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
  const uint32_t key = Key(record.family, record.local_port);
  auto it = current_.find(key);
  if (it != current_.end()) {
    ++it->second;
  } else if (current_.size() < max_ports_ || previous_.contains(key)) {
    current_.emplace(key, 1);
  } else {
    ++untracked_;
  }
}

ListenReport ListenInventory::Finish() {
  ListenReport report;
  report.has_previous = has_previous_;
  report.untracked_sockets = untracked_;
  for (const auto& [key, sockets] : current_) report.listening.push_back(FromKey(key, sockets));
  for (const auto& [key, sockets] : previous_) {
    if (!current_.contains(key)) report.vanished.push_back(FromKey(key, sockets));
  }
  SortByKey(&report.listening);
  SortByKey(&report.vanished);
  previous_ = std::move(current_);
  current_.clear();
  untracked_ = 0;
  has_previous_ = true;
  return report;
}

}  // namespace tcpstates
