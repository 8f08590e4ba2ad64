// From counts to culprits: the per-socket analyses that answer "which process holds the
// CLOSE_WAIT sockets", "which listener disappeared" and "how close is TIME_WAIT churn to
// exhausting ephemeral ports". One Diagnoser rides along with a collection (the Collector
// drives it: Observe every socket, then Finish, or Discard a collection that failed).
//
// Each analysis is optional; its memory is bounded by its cap whatever the socket count.
#ifndef TCPSTATES_COMMON_DIAGNOSIS_DIAGNOSIS_H_
#define TCPSTATES_COMMON_DIAGNOSIS_DIAGNOSIS_H_

#include <functional>
#include <optional>

#include "common/diagnosis/close_wait_owners.h"
#include "common/diagnosis/listen_inventory.h"
#include "common/diagnosis/port_pressure.h"

namespace tcpstates {

struct DiagnosisOptions {
  bool close_wait_owners = true;
  CloseWaitOwnersOptions owners;  // owners.proc is set from the collection's ProcRoot
  bool listen_inventory = true;
  size_t max_listen_ports = 256;
  // Name the processes of new listeners (ListenReport::appeared).
  bool new_listener_owners = true;
  // Needs every ESTABLISHED and TIME_WAIT socket (see the collection policy).
  bool port_pressure = true;
};

struct Diagnosis {
  std::optional<CloseWaitAttribution> close_wait;
  std::optional<ListenReport> listen;
  std::optional<PortPressureReport> port_pressure;
};

class Diagnoser {
 public:
  // `proc` is where processes are searched; `read_port_settings` where the namespace's port
  // sysctls come from (unset: `proc`'s).
  explicit Diagnoser(const DiagnosisOptions& options = {}, const ProcRoot& proc = ProcRoot(),
                     std::function<PortSettings()> read_port_settings = nullptr);

  void Observe(const SocketRecord& record) {
    if (owners_) owners_->Observe(record);
    if (listen_) listen_->Observe(record);
    if (pressure_) pressure_->Observe(record);
  }

  // A CLOSE_WAIT socket with its tcp_info age (a second, small dump).
  void ObserveAge(const SocketRecord& record) {
    if (owners_) owners_->ObserveAge(record);
  }

  // Completes the analyses of the sockets observed since the last call. Attribution of
  // CLOSE_WAIT sockets costs nothing when there were none.
  Diagnosis Finish();

  // Forgets the sockets observed since the last Finish(), for a collection that failed
  // part-way: the listening ports of the last complete collection stay the reference, so a
  // port that vanishes across a failed collection is still named at the next good one.
  void Discard();

 private:
  std::optional<CloseWaitOwners> owners_;
  std::optional<ListenInventory> listen_;
  // For naming new listeners' owners.
  ProcRoot proc_;
  std::optional<CgroupTree> listener_cgroups_;
  uint64_t netns_inode_ = 0;
  size_t max_fds_ = 0;
  std::optional<PortPressure> pressure_;
};

}  // namespace tcpstates

#endif  // TCPSTATES_COMMON_DIAGNOSIS_DIAGNOSIS_H_
