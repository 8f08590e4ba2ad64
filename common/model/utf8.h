// Decoding just enough UTF-8 to keep text from outside (process names, cgroup names) safe
// on a terminal: the encoders (JSON, line protocol) pass printable text through and escape
// what a terminal would act on.
#ifndef TCPSTATES_COMMON_MODEL_UTF8_H_
#define TCPSTATES_COMMON_MODEL_UTF8_H_

#include <cstddef>
#include <cstdint>

#include "absl/strings/string_view.h"

namespace tcpstates {

// Length of the valid UTF-8 sequence starting at text[i] (1 for ASCII), 0 if there is none
// (a stray continuation byte, an overlong form, a surrogate, a truncated sequence); its code
// point in *code_point.
inline size_t Utf8SequenceLength(absl::string_view text, size_t i, uint32_t* code_point) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned char lead = byte(i);
  if (lead < 0x80) {
    *code_point = lead;
    return 1;
  }
  size_t length;
  uint32_t min;
  if (lead >= 0xc2 && lead <= 0xdf) {
    length = 2, min = 0x80;
  } else if (lead >= 0xe0 && lead <= 0xef) {
    length = 3, min = 0x800;
  } else if (lead >= 0xf0 && lead <= 0xf4) {
    length = 4, min = 0x10000;
  } else {
    return 0;
  }
  if (i + length > text.size()) return 0;
  uint32_t code = lead & (0x7f >> length);
  for (size_t k = 1; k < length; ++k) {
    if ((byte(i + k) & 0xc0) != 0x80) return 0;
    code = (code << 6) | (byte(i + k) & 0x3f);
  }
  if (code < min || code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff)) return 0;
  *code_point = code;
  return length;
}

// C0 controls, DEL and C1 controls (U+0080..U+009F: CSI is U+009B): what a terminal acts on
// instead of printing.
inline bool IsControl(uint32_t code_point) {
  return code_point < 0x20 || (code_point >= 0x7f && code_point <= 0x9f);
}

}  // namespace tcpstates

#endif  // TCPSTATES_COMMON_MODEL_UTF8_H_
