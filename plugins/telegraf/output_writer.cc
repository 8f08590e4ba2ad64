#include "plugins/telegraf/output_writer.h"

#include <poll.h>
#include <unistd.h>

#include <cerrno>

#include "common/kernel/posix_error.h"

namespace tcpstates::telegraf {

WriteResult WriteFully(int fd, absl::string_view data) {
  while (!data.empty()) {
    ssize_t n = write(fd, data.data(), data.size());
    if (n >= 0) {
      data.remove_prefix(static_cast<size_t>(n));
      continue;
    }
    switch (errno) {
      case EINTR:
        continue;
      case EAGAIN: {
        // Someone handed us a non-blocking stdout: wait until the reader makes room.
        pollfd writable = {.fd = fd, .events = POLLOUT, .revents = 0};
        if (poll(&writable, 1, -1) < 0 && errno != EINTR) {
          return {WriteResult::Outcome::kFailed, PosixError(errno, "poll on stdout")};
        }
        continue;
      }
      case EPIPE:
      case ECONNRESET:
        return {WriteResult::Outcome::kReaderGone, absl::OkStatus()};
      default:
        return {WriteResult::Outcome::kFailed, PosixError(errno, "writing stdout")};
    }
  }
  return {WriteResult::Outcome::kWritten, absl::OkStatus()};
}

}  // namespace tcpstates::telegraf
