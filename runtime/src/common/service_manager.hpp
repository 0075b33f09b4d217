#pragma once
// Telling the service manager (systemd, `Type=notify`) what the process is doing, through sd_notify: READY=1 once
// it serves, RELOADING=1 (with MONOTONIC_USEC, as systemd asks since 253) while a SIGHUP reload runs and READY=1
// after it, STOPPING=1 when it stops, and a STATUS= line for `systemctl status`. Without $NOTIFY_SOCKET (not run
// by systemd) each call does nothing. Worker processes never notify: the supervisor starts them without the
// variable, so only the service's main process speaks for it.
#include <string>

namespace mephisto {

void notify_ready(const std::string& status);
void notify_reloading(const std::string& status);
void notify_stopping(const std::string& status);

}  // namespace mephisto
