// Reads the kernel's text socket tables, /proc/net/tcp and /proc/net/tcp6.
//
// At a million sockets these files exceed 150 MB, so they are streamed through one fixed
// buffer and parsed line by line without copies or per-line allocation. A line that cannot be
// decoded is skipped and counted in WalkStats::malformed, never guessed at.
#ifndef TCPSTATES_COMMON_KERNEL_PROC_NET_TCP_H_
#define TCPSTATES_COMMON_KERNEL_PROC_NET_TCP_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "common/model/socket_record.h"

namespace tcpstates {

// Decodes one line of /proc/net/tcp (family kIpv4) or /proc/net/tcp6 (kIpv6), without its
// '\n'. Returns false for the header line and for malformed lines (the caller tells them
// apart with IsProcNetTcpHeader).
bool ParseProcNetTcpLine(absl::string_view line, Family family, SocketRecord* record);

// True for the column header ("  sl  local_address rem_address ...").
bool IsProcNetTcpHeader(absl::string_view line);

// Parses a whole table held in memory (tests and fuzzing use this). A last line without '\n'
// is parsed like any other.
void ParseProcNetTcpText(absl::string_view text, Family family, SocketVisitor visitor,
                         WalkStats* stats);

// Streams the table at `path` through `buffer` (at least 4 KiB; 64 KiB is plenty).
// NotFound when the file does not exist (e.g. tcp6 with IPv6 disabled); other read errors as
// their errno. Lines longer than the buffer are counted malformed and skipped.
absl::Status ReadProcNetTcp(const char* path, Family family, absl::Span<char> buffer,
                            SocketVisitor visitor, WalkStats* stats);

}  // namespace tcpstates

#endif  // TCPSTATES_COMMON_KERNEL_PROC_NET_TCP_H_
