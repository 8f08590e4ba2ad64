// Writing batches to stdout the way a pipe reader (Telegraf) needs them: whole lines only,
// never blocked beyond a stop request, and a reader that went away reported as such rather
// than as an I/O error.
#ifndef TCPSTATES_PLUGINS_TELEGRAF_OUTPUT_WRITER_H_
#define TCPSTATES_PLUGINS_TELEGRAF_OUTPUT_WRITER_H_

#include <cstddef>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace tcpstates::telegraf {

struct WriteResult {
  enum class Outcome { kWritten, kWouldBlock, kReaderGone, kFailed };
  Outcome outcome;
  absl::Status error;  // for kFailed
};

// A write of at most this many bytes to a pipe that poll(2) reports writable is taken whole,
// without blocking (PIPE_BUF).
inline constexpr size_t kPieceBytes = 4096;

// The next piece of `data` to write: at most kPieceBytes, ending just after a '\n' wherever
// one fits, so a batch cut short between pieces leaves the reader whole lines only (a line
// longer than a piece - none of ours comes close - is written in several).
absl::string_view NextPiece(absl::string_view data);

// Writes the next piece of *rest to `fd` (call when `fd` is writable) and drops what was
// written from *rest. EINTR is retried; EAGAIN (a non-blocking stdout that filled up) is
// kWouldBlock: wait for writability and call again. EPIPE (the caller must ignore SIGPIPE)
// and ECONNRESET are kReaderGone. Nothing is buffered in this process: a written piece is
// already flushed.
WriteResult WritePiece(int fd, absl::string_view* rest);

// Writes all of `data`, waiting for room with poll(2) as long as it takes: for one-shot runs,
// which SIGTERM ends by its default action.
WriteResult WriteFully(int fd, absl::string_view data);

}  // namespace tcpstates::telegraf

#endif  // TCPSTATES_PLUGINS_TELEGRAF_OUTPUT_WRITER_H_
