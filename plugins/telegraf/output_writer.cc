#include "plugins/telegraf/output_writer.h"

#include <poll.h>
#include <unistd.h>

#include <cerrno>

#include "common/kernel/posix_error.h"

namespace tcpstates::telegraf {

absl::string_view NextPiece(absl::string_view data) {
  if (data.size() <= kPieceBytes) return data;
  const size_t last_newline = data.substr(0, kPieceBytes).rfind('\n');
  return data.substr(0, last_newline == absl::string_view::npos ? kPieceBytes : last_newline + 1);
}

WriteResult WritePiece(int fd, absl::string_view* rest) {
  const absl::string_view piece = NextPiece(*rest);
  for (;;) {
    ssize_t n = write(fd, piece.data(), piece.size());
    if (n >= 0) {
      rest->remove_prefix(static_cast<size_t>(n));
      return {WriteResult::Outcome::kWritten, absl::OkStatus()};
    }
    switch (errno) {
      case EINTR:
        continue;
      case EAGAIN:
        return {WriteResult::Outcome::kWouldBlock, absl::OkStatus()};
      case EPIPE:
      case ECONNRESET:
        return {WriteResult::Outcome::kReaderGone, absl::OkStatus()};
      default:
        return {WriteResult::Outcome::kFailed, PosixError(errno, "writing stdout")};
    }
  }
}

WriteResult WriteFully(int fd, absl::string_view data) {
  while (!data.empty()) {
    WriteResult result = WritePiece(fd, &data);
    if (result.outcome == WriteResult::Outcome::kWouldBlock) {
      pollfd writable = {.fd = fd, .events = POLLOUT, .revents = 0};
      if (poll(&writable, 1, -1) < 0 && errno != EINTR) {
        return {WriteResult::Outcome::kFailed, PosixError(errno, "poll on stdout")};
      }
    } else if (result.outcome != WriteResult::Outcome::kWritten) {
      return result;
    }
  }
  return {WriteResult::Outcome::kWritten, absl::OkStatus()};
}

}  // namespace tcpstates::telegraf
