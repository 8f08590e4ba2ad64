// libFuzzer target: arbitrary bytes as a netlink receive buffer. Properties: no crash, no
// out-of-bounds or misaligned read (ASan/UBSan), decoded records are well-formed.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "common/kernel/netlink_socket_table.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // The first four bytes choose the dump's sequence number, so that matching and
  // non-matching messages are both explored; the rest is the buffer.
  uint32_t seq = 0;
  if (size >= 4) {
    std::memcpy(&seq, data, 4);
    data += 4;
    size -= 4;
  }
  tcpstates::WalkStats stats;
  uint64_t seen = 0;
  absl::StatusOr<tcpstates::DumpProgress> progress = tcpstates::WalkDiagMessages(
      absl::MakeConstSpan(data, size), seq,
      [&](const tcpstates::SocketRecord& record) {
        ++seen;
        if (record.family != tcpstates::Family::kIpv4 &&
            record.family != tcpstates::Family::kIpv6) {
          std::abort();
        }
      },
      &stats);
  if (seen != stats.sockets) std::abort();
  (void)progress;
  return 0;
}
