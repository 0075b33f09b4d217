#include "network_lab.hpp"

#include <unistd.h>

#include <stdexcept>

#include "harness.hpp"

namespace mephisto::test {
namespace {

// Runs `command`; throws with its output when it fails.
void run(const std::string& command) {
    std::string output;
    if (shell(command, output) != 0) throw std::runtime_error("`" + command + "` failed: " + output);
}

bool succeeds(const std::string& command) {
    std::string output;
    return shell(command, output) == 0;
}

}  // namespace

std::string NetworkLab::unavailable() {
    if (::geteuid() != 0) return "network namespaces need root";
    const std::string probe = "mph-probe-" + std::to_string(::getpid());
    if (!succeeds("ip netns add " + probe)) return "`ip netns add` does not work here";
    const bool veth = succeeds("ip -n " + probe + " link add mphpa type veth peer name mphpb");
    run("ip netns del " + probe);
    return veth ? std::string() : "veth links cannot be made here";
}

NetworkLab::NetworkLab(int hosts) : tag_(std::to_string(::getpid() % 100000)) {
    try {
        broker_link_ = "mb" + tag_ + "a";
        broker_peer_ = "mb" + tag_ + "b";
        run("ip link add " + broker_link_ + " type veth peer name " + broker_peer_);
        run("ip addr add " + std::string(kBrokerAddress) + "/32 dev " + broker_link_);
        run("ip link set " + broker_link_ + " up && ip link set " + broker_peer_ + " up");
        for (int i = 1; i <= hosts; ++i) {
            Host h{"mph-" + tag_ + "-" + std::to_string(i), "mh" + tag_ + "h" + std::to_string(i),
                   "mh" + tag_ + "n" + std::to_string(i)};
            hosts_.push_back(h);
            const std::string net = "10.77." + std::to_string(i);
            run("ip netns add " + h.ns);
            run("ip link add " + h.here + " type veth peer name " + h.there);
            run("ip link set " + h.there + " netns " + h.ns);
            run("ip addr add " + net + ".1/24 dev " + h.here + " && ip link set " + h.here + " up");
            run("ip -n " + h.ns + " link set lo up");
            run("ip -n " + h.ns + " addr add " + net + ".2/24 dev " + h.there);
            restore(i);
        }
    } catch (...) {
        teardown();
        throw;
    }
}

NetworkLab::~NetworkLab() { teardown(); }

void NetworkLab::teardown() {
    std::string ignored;
    // Deleting a namespace deletes the veth end inside it, and with it the pair.
    for (const auto& h : hosts_) {
        shell("ip netns del " + h.ns, ignored);
        shell("ip link del " + h.here + " 2>/dev/null", ignored);
    }
    hosts_.clear();
    if (!broker_link_.empty()) shell("ip link del " + broker_link_ + " 2>/dev/null", ignored);
    broker_link_.clear();
}

std::vector<std::string> NetworkLab::in_ns(int host, std::vector<std::string> argv) const {
    std::vector<std::string> out = {"/usr/sbin/ip", "netns", "exec", ns(host)};
    out.insert(out.end(), argv.begin(), argv.end());
    return out;
}

void NetworkLab::cut(int host) { run("ip -n " + ns(host) + " link set " + hosts_.at(host - 1).there + " down"); }

void NetworkLab::restore(int host) {
    const Host& h = hosts_.at(host - 1);
    run("ip -n " + h.ns + " link set " + h.there + " up");
    // A link going down takes its routes with it.
    run("ip -n " + h.ns + " route replace default via 10.77." + std::to_string(host) + ".1 dev " + h.there);
}

std::string NetworkLab::make_lossy(int host) {
    const Host& h = hosts_.at(host - 1);
    const std::string there = "tc -n " + h.ns + " ";
    if (succeeds(there + "qdisc replace dev " + h.there + " root netem loss 5% delay 20ms")) {
        run("tc qdisc replace dev " + h.here + " root netem loss 5% delay 20ms");
        return "netem loss 5% delay 20ms";
    }
    const std::string tbf = " root tbf rate 256kbit burst 1600 latency 2ms";
    run(there + "qdisc replace dev " + h.there + tbf);
    run("tc qdisc replace dev " + h.here + tbf);
    return "tbf rate 256kbit burst 1600 latency 2ms (this kernel has no netem)";
}

long NetworkLab::dropped(int host) const {
    const Host& h = hosts_.at(host - 1);
    long total = 0;
    for (const std::string command : {"tc -s qdisc show dev " + h.here, "tc -n " + h.ns + " -s qdisc show dev " + h.there}) {
        std::string output;
        if (shell(command, output) != 0) continue;
        // " Sent 123 bytes 4 pkt (dropped 5, overlimits 6 requeues 0)"
        for (size_t at = output.find("(dropped "); at != std::string::npos; at = output.find("(dropped ", at + 1))
            total += std::stol(output.substr(at + 9));
    }
    return total;
}

}  // namespace mephisto::test
