#include "common/diagnosis/diagnosis.h"

namespace tcpstates {

Diagnoser::Diagnoser(const DiagnosisOptions& options, const ProcRoot& proc,
                     std::function<PortSettings()> read_port_settings) {
  if (options.close_wait_owners) {
    CloseWaitOwnersOptions owners = options.owners;
    owners.proc = proc;
    owners_.emplace(std::move(owners));
  }
  if (options.listen_inventory) listen_.emplace(options.max_listen_ports, proc);
  if (options.listen_inventory && options.new_listener_owners) {
    proc_ = proc;
    listener_cgroups_.emplace(proc, options.owners.cgroup2_mount);
    netns_inode_ = options.owners.netns_inode;
    max_fds_ = options.owners.max_fds;
  }
  if (options.port_pressure) {
    if (read_port_settings) {
      pressure_.emplace(std::move(read_port_settings));
    } else {
      pressure_.emplace(proc);
    }
  }
}

Diagnosis Diagnoser::Finish() {
  Diagnosis diagnosis;
  if (owners_) diagnosis.close_wait = owners_->Attribute();
  if (listen_) {
    diagnosis.listen = listen_->Finish([this](NewListener& listener) {
      if (listener_cgroups_) {
        listener.owners = FindListenerOwners(proc_, &*listener_cgroups_, listener.sockets,
                                             netns_inode_, max_fds_);
      }
    });
  }
  if (pressure_) diagnosis.port_pressure = pressure_->Finish();
  return diagnosis;
}

void Diagnoser::Discard() {
  if (owners_) owners_->Discard();
  if (listen_) listen_->Discard();
  if (pressure_) pressure_->Discard();
}

}  // namespace tcpstates
