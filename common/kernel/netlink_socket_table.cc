#include "common/kernel/netlink_socket_table.h"

#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstring>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "common/kernel/posix_error.h"

namespace tcpstates {
namespace {

// The kernel aligns messages and attributes to 4 bytes; reading fields through memcpy keeps
// arbitrary (fuzzed) buffers free of misaligned loads.
template <typename T>
T Load(const uint8_t* p) {
  T value;
  std::memcpy(&value, p, sizeof value);
  return value;
}

constexpr size_t Align4(size_t n) { return (n + 3) & ~size_t{3}; }

// Walks the attributes after the base message for the ones we use.
void DecodeAttributes(const uint8_t* p, size_t length, SocketRecord* record) {
  while (length >= sizeof(nlattr)) {
    const auto attr = Load<nlattr>(p);
    if (attr.nla_len < sizeof(nlattr) || attr.nla_len > length) return;
    const uint16_t type = attr.nla_type & NLA_TYPE_MASK;
    if (type == INET_DIAG_CGROUP_ID && attr.nla_len >= sizeof(nlattr) + 8) {
      record->cgroup_id = Load<uint64_t>(p + sizeof(nlattr));
    } else if (type == INET_DIAG_INFO) {
      // Older kernels send a shorter tcp_info: take what is there, the rest stays zero.
      tcp_info info{};
      std::memcpy(&info, p + sizeof(nlattr),
                  std::min(sizeof info, static_cast<size_t>(attr.nla_len - sizeof(nlattr))));
      if (attr.nla_len - sizeof(nlattr) >=
          offsetof(tcp_info, tcpi_last_ack_recv) + sizeof(info.tcpi_last_ack_recv)) {
        record->last_received_ms = std::min(info.tcpi_last_data_recv, info.tcpi_last_ack_recv);
      }
    }
    const size_t step = Align4(attr.nla_len);
    if (step >= length) return;
    p += step;
    length -= step;
  }
}

}  // namespace

absl::StatusOr<DumpProgress> WalkDiagMessages(absl::Span<const uint8_t> data, uint32_t seq,
                                              SocketVisitor visitor, WalkStats* stats) {
  const uint8_t* p = data.data();
  size_t left = data.size();
  while (left >= sizeof(nlmsghdr)) {
    const auto header = Load<nlmsghdr>(p);
    if (header.nlmsg_len < sizeof(nlmsghdr) || header.nlmsg_len > left) {
      // The rest of the buffer cannot be framed: count it once and stop reading it.
      ++stats->malformed;
      return DumpProgress::kMore;
    }
    const uint8_t* payload = p + sizeof(nlmsghdr);
    const size_t payload_length = header.nlmsg_len - sizeof(nlmsghdr);
    if (header.nlmsg_seq == seq) {
      if (header.nlmsg_type == NLMSG_DONE) return DumpProgress::kDone;
      if (header.nlmsg_type == NLMSG_ERROR) {
        // The kernel sends -errno; anything else (a positive or absurd value) is a
        // protocol error rather than something to negate.
        const int code = payload_length >= sizeof(int) ? Load<int>(payload) : -EPROTO;
        if (code == 0) return DumpProgress::kDone;  // an ACK: nothing more to read
        const int error = code < 0 && code > -4096 ? -code : EPROTO;
        return PosixError(error, "sock_diag dump");
      }
      if (payload_length < sizeof(inet_diag_msg)) {
        ++stats->malformed;
      } else {
        const auto msg = Load<inet_diag_msg>(payload);
        if (msg.idiag_family != AF_INET && msg.idiag_family != AF_INET6) {
          ++stats->malformed;
        } else {
          SocketRecord record;
          record.family = msg.idiag_family == AF_INET ? Family::kIpv4 : Family::kIpv6;
          record.state = msg.idiag_state;
          record.timer = msg.idiag_timer;
          record.local_port = ntohs(msg.id.idiag_sport);
          record.remote_port = ntohs(msg.id.idiag_dport);
          std::memcpy(record.remote_address.data(), msg.id.idiag_dst, record.remote_address.size());
          record.inode = msg.idiag_inode;
          record.receive_queue = msg.idiag_rqueue;
          record.send_queue = msg.idiag_wqueue;
          const size_t base = Align4(sizeof(inet_diag_msg));
          if (payload_length > base) {
            DecodeAttributes(payload + base, payload_length - base, &record);
          }
          ++stats->sockets;
          visitor(record);
        }
      }
    }
    const size_t step = Align4(header.nlmsg_len);
    if (step >= left) break;
    p += step;
    left -= step;
  }
  if (left != 0 && left < sizeof(nlmsghdr)) ++stats->malformed;
  return DumpProgress::kMore;
}

absl::StatusOr<NetlinkSocketTable> NetlinkSocketTable::Open() {
  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
  if (fd < 0) return PosixError(errno, "netlink sock_diag socket");
  return NetlinkSocketTable(fd);
}

NetlinkSocketTable::NetlinkSocketTable(int fd)
    : fd_(fd), buffer_(new uint8_t[kReceiveBufferSize]) {}

NetlinkSocketTable::NetlinkSocketTable(NetlinkSocketTable&& other) noexcept
    : fd_(other.fd_),
      seq_(other.seq_),
      per_family_(other.per_family_),
      buffer_(std::move(other.buffer_)) {
  other.fd_ = -1;
}

NetlinkSocketTable& NetlinkSocketTable::operator=(NetlinkSocketTable&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) close(fd_);
    fd_ = other.fd_;
    seq_ = other.seq_;
    per_family_ = other.per_family_;
    buffer_ = std::move(other.buffer_);
    other.fd_ = -1;
  }
  return *this;
}

NetlinkSocketTable::~NetlinkSocketTable() {
  if (fd_ >= 0) close(fd_);
}

absl::Status NetlinkSocketTable::Dump(const DumpRequest& request, SocketVisitor visitor,
                                      WalkStats* stats) {
  if (!per_family_) {
    WalkStats legacy_stats;
    absl::Status status = DumpOnce(/*legacy=*/true, AF_UNSPEC, request, visitor, &legacy_stats);
    if (status.ok() || legacy_stats.sockets > 0) {
      // A failure after sockets were delivered is a real failure, not a refusal.
      stats->sockets += legacy_stats.sockets;
      stats->malformed += legacy_stats.malformed;
      return status;
    }
    per_family_ = true;  // refused: remember, and never ask again
  }
  for (uint8_t family : {uint8_t{AF_INET}, uint8_t{AF_INET6}}) {
    absl::Status status = DumpOnce(/*legacy=*/false, family, request, visitor, stats);
    // A kernel without IPv6 has no AF_INET6 TCP sockets to report.
    if (!status.ok() && !(family == AF_INET6 && absl::IsNotFound(status))) return status;
  }
  return absl::OkStatus();
}

std::vector<uint8_t> PortFilter(absl::Span<const uint16_t> local,
                                absl::Span<const uint16_t> remote) {
  // One condition per port, OR-ed as ss compiles it: each condition jumps over the next op
  // when false (no = 12) and falls through when true (yes = 8) onto a JMP that always goes
  // to the end (accept). The last condition's false jumps 4 bytes past the end (reject).
  // Every jump lands on an op the "yes" chain reaches, which the kernel's audit requires.
  struct Condition {
    uint8_t code;
    uint16_t port;
  };
  std::vector<Condition> conditions;
  for (uint16_t port : local) conditions.push_back({INET_DIAG_BC_S_EQ, port});
  for (uint16_t port : remote) conditions.push_back({INET_DIAG_BC_D_EQ, port});
  std::vector<uint8_t> code;
  auto append = [&code](inet_diag_bc_op op) {
    const auto* bytes = reinterpret_cast<const uint8_t*>(&op);
    code.insert(code.end(), bytes, bytes + sizeof op);
  };
  const size_t total = conditions.empty() ? 0 : conditions.size() * 12 - 4;
  for (size_t i = 0; i < conditions.size(); ++i) {
    append({conditions[i].code, 8, 12});
    append({0, 0, conditions[i].port});  // the port, in the "no" field of a data op
    if (i + 1 < conditions.size()) {
      const size_t after = total - code.size() - 4;  // bytes after this JMP
      append({INET_DIAG_BC_JMP, 4, static_cast<uint16_t>(after + 4)});
    }
  }
  return code;
}

std::vector<uint8_t> BuildDumpRequest(bool legacy, uint8_t family, const DumpRequest& dump,
                                      uint32_t seq) {
  struct {
    nlmsghdr header;
    union {
      inet_diag_req legacy;
      inet_diag_req_v2 by_family;
    } body;
  } request{};
  const uint32_t states = dump.states & kShownStateMask;
  const uint8_t extensions = dump.tcp_info ? 1 << (INET_DIAG_INFO - 1) : 0;
  if (legacy) {
    request.header.nlmsg_len = NLMSG_LENGTH(sizeof(inet_diag_req));
    request.header.nlmsg_type = TCPDIAG_GETSOCK;
    request.body.legacy.idiag_family = AF_INET;  // ignored: the kernel dumps every family
    request.body.legacy.idiag_states = states;
    request.body.legacy.idiag_ext = extensions;
  } else {
    request.header.nlmsg_len = NLMSG_LENGTH(sizeof(inet_diag_req_v2));
    request.header.nlmsg_type = SOCK_DIAG_BY_FAMILY;
    request.body.by_family.sdiag_family = family;
    request.body.by_family.sdiag_protocol = IPPROTO_TCP;
    request.body.by_family.idiag_states = states;
    request.body.by_family.idiag_ext = extensions;
  }
  request.header.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  request.header.nlmsg_seq = seq;
  const auto* bytes = reinterpret_cast<const uint8_t*>(&request);
  std::vector<uint8_t> out(bytes, bytes + request.header.nlmsg_len);
  if (!dump.filter.empty()) {
    const nlattr attribute{static_cast<uint16_t>(NLA_HDRLEN + dump.filter.size()),
                           INET_DIAG_REQ_BYTECODE};
    const auto* attribute_bytes = reinterpret_cast<const uint8_t*>(&attribute);
    out.insert(out.end(), attribute_bytes, attribute_bytes + sizeof attribute);
    out.insert(out.end(), dump.filter.begin(), dump.filter.end());
    out.resize(NLMSG_ALIGN(out.size()), 0);
    const uint32_t length = static_cast<uint32_t>(out.size());
    std::memcpy(out.data() + offsetof(nlmsghdr, nlmsg_len), &length, sizeof length);
  }
  return out;
}

absl::Status NetlinkSocketTable::DumpOnce(bool legacy, uint8_t family, const DumpRequest& dump,
                                          SocketVisitor visitor, WalkStats* stats) {
  const uint32_t seq = ++seq_;
  const std::vector<uint8_t> request = BuildDumpRequest(legacy, family, dump, seq);
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  for (;;) {
    ssize_t sent = sendto(fd_, request.data(), request.size(), 0,
                          reinterpret_cast<const sockaddr*>(&kernel), sizeof kernel);
    if (sent >= 0) break;
    if (errno != EINTR) return PosixError(errno, "sock_diag request");
  }

  // However the dump stops short of its end - a receive error, a truncated or malformed
  // reply, or an exception from the visitor (std::bad_alloc inside collectd) - the rest of it
  // is read and dropped, or the next dump on this socket would get EBUSY.
  absl::Cleanup discard_rest = [this, seq] {
    try {
      DiscardRestOfDump(seq);
    } catch (...) {  // runs during unwinding too: nothing may escape
    }
  };
  for (;;) {
    iovec iov{buffer_.get(), kReceiveBufferSize};
    msghdr message{};
    message.msg_iov = &iov;
    message.msg_iovlen = 1;
    ssize_t received = recvmsg(fd_, &message, 0);
    if (received < 0) {
      if (errno == EINTR) continue;
      return PosixError(errno, "sock_diag receive");
    }
    if (received == 0) return absl::UnavailableError("sock_diag: netlink socket closed");
    if (message.msg_flags & MSG_TRUNC) {
      return absl::InternalError("sock_diag: a reply did not fit the receive buffer");
    }
    absl::StatusOr<DumpProgress> progress = WalkDiagMessages(
        absl::MakeConstSpan(buffer_.get(), static_cast<size_t>(received)), seq, visitor, stats);
    if (!progress.ok()) return progress.status();
    if (*progress == DumpProgress::kDone) {
      std::move(discard_rest).Cancel();
      return absl::OkStatus();
    }
  }
}

void NetlinkSocketTable::DiscardRestOfDump(uint32_t seq) {
  // The kernel builds each next part of a dump as the last one is read, and answers a new
  // request on a socket whose dump is unfinished with EBUSY: read this one to its end (or
  // until nothing more comes), so that the next collection can dump again.
  WalkStats ignored;
  for (;;) {
    ssize_t received = recv(fd_, buffer_.get(), kReceiveBufferSize, MSG_DONTWAIT);
    if (received < 0 && errno == EINTR) continue;
    if (received <= 0) return;
    absl::StatusOr<DumpProgress> progress = WalkDiagMessages(
        absl::MakeConstSpan(buffer_.get(), static_cast<size_t>(received)), seq,
        [](const SocketRecord&) {}, &ignored);
    if (!progress.ok() || *progress == DumpProgress::kDone) return;
  }
}

}  // namespace tcpstates
