// tcpstates-execd's configuration: its flags, what they mean, and the collection request
// they make. Built and checked once at start-up; the gather loop only reads it.
#ifndef TCPSTATES_PLUGINS_TELEGRAF_EXECD_CONFIG_H_
#define TCPSTATES_PLUGINS_TELEGRAF_EXECD_CONFIG_H_

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/collection/collection_request.h"
#include "common/command_line/command_line.h"
#include "plugins/telegraf/execd_batch.h"
#include "plugins/telegraf/execd_log.h"
#include "plugins/telegraf/gather_trigger.h"

namespace tcpstates::telegraf {

struct ExecdConfig {
  TriggerMode mode = TriggerMode::kStdin;
  absl::Duration interval = absl::Seconds(30);
  bool once = false;
  BatchOptions batch;
  SourceKind source = SourceKind::kAuto;
  CountingChoice counting = CountingChoice::kAuto;
  AnalysisChoices analyses;
  LogLevel stderr_level = LogLevel::kInfo;
  std::vector<uint16_t> local_ports;
  std::vector<uint16_t> remote_ports;
  bool queued_bytes = false;
  bool all_namespaces = false;
  int max_namespaces = 256;

  // What every gather collects.
  CollectionRequest Request() const;
};

// The program's flags, writing into *config (which holds the defaults).
command_line::Flags DefineFlags(ExecdConfig* config);

// What no single flag can check: the measurement name is encodable, and the collection
// request can be served (ValidateRequest). InvalidArgument says what is wrong.
absl::Status Validate(const ExecdConfig& config);

}  // namespace tcpstates::telegraf

#endif  // TCPSTATES_PLUGINS_TELEGRAF_EXECD_CONFIG_H_
