// `mephisto broker`: a standalone embedded broker on a fixed port, for several hosts or tools to share.
#include <signal.h>

#include <iostream>

#include "cli/commands.hpp"
#include "common/logging.hpp"
#include "kafka/embedded_broker.hpp"

namespace mephisto::cli {

int broker(const BrokerOptions& o) {
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);

    std::vector<std::pair<std::string, int>> topics;
    for (const auto& t : o.topics) {
        auto colon = t.rfind(':');
        std::string name = t.substr(0, colon);
        int partitions = 4;
        if (colon != std::string::npos) {
            try {
                size_t used = 0;
                partitions = std::stoi(t.substr(colon + 1), &used);
                if (used != t.size() - colon - 1 || partitions < 1) throw std::invalid_argument("range");
            } catch (const std::exception&) {
                std::cerr << "broker: --topic " << t << ": expected NAME or NAME:PARTITIONS with PARTITIONS >= 1\n";
                return 2;
            }
        }
        if (name.empty()) {
            std::cerr << "broker: --topic " << t << ": the name is empty\n";
            return 2;
        }
        topics.emplace_back(name, partitions);
    }
    auto b = EmbeddedBroker::start(o.port, o.brokers, o.address);
    if (!b) {
        std::cerr << b.error() << "\n";
        return 1;
    }
    for (const auto& [name, partitions] : topics) {
        if (auto st = (*b)->create_topic(name, partitions); !st) {
            std::cerr << st.error() << "\n";
            return 1;
        }
    }
    auto log = logger("broker");
    log->info("embedded broker listening on {} ({} topic(s) created; kcat -b {} -L)", (*b)->bootstrap(), topics.size(),
              (*b)->bootstrap());
    // The address on stdout, alone on a line, for scripts.
    std::cout << (*b)->bootstrap() << std::endl;
    int sig = 0;
    sigwait(&signals, &sig);
    log->info("received {}, stopping", strsignal(sig));
    return 0;
}

}  // namespace mephisto::cli
