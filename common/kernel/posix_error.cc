#include "common/kernel/posix_error.h"

#include <cstring>

#include "absl/strings/str_cat.h"

namespace tcpstates {

absl::Status PosixError(int error_number, absl::string_view what) {
  char buffer[128];
  // GNU strerror_r returns the message, which may or may not live in `buffer`.
  const char* message = strerror_r(error_number, buffer, sizeof buffer);
  return absl::Status(absl::ErrnoToStatusCode(error_number),
                      absl::StrCat(what, ": ", message, " (errno ", error_number, ")"));
}

}  // namespace tcpstates
