// Writing batches to stdout the way a pipe reader (Telegraf) needs them: each batch whole,
// in one go, and a reader that went away reported as such rather than as an I/O error.
#ifndef TCPSTATES_PLUGINS_TELEGRAF_OUTPUT_WRITER_H_
#define TCPSTATES_PLUGINS_TELEGRAF_OUTPUT_WRITER_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace tcpstates::telegraf {

struct WriteResult {
  enum class Outcome { kWritten, kReaderGone, kFailed };
  Outcome outcome;
  absl::Status error;  // for kFailed
};

// Writes all of `data` to `fd` with write(2): short writes are continued, EINTR retried, and
// a non-blocking fd is waited for with poll(2), so a batch is never torn by us. EPIPE (the
// caller must ignore SIGPIPE) and ECONNRESET are kReaderGone. Nothing is buffered in this
// process, so a batch that was written is already flushed.
WriteResult WriteFully(int fd, absl::string_view data);

}  // namespace tcpstates::telegraf

#endif  // TCPSTATES_PLUGINS_TELEGRAF_OUTPUT_WRITER_H_
