#pragma once
// Hosts on a real network of the test's own: each host runs in a network namespace (`ip netns`) linked to this
// one by a veth pair, and the broker listens on an address of this namespace that every host reaches through its
// link. Faults are the kernel's: a link set down (a host cut off), or a queueing discipline that drops and delays
// (netem when the kernel has it, else a token bucket too small for the traffic). Everything is removed when the
// object dies. Needs root and iproute2.
//
// Addresses: the broker 10.77.0.1 (on a veth pair of its own, both ends here: this kernel may lack dummy links);
// host i's link 10.77.i.1 (here) <-> 10.77.i.2 (its namespace), its default route via 10.77.i.1.
#include <string>
#include <vector>

namespace mephisto::test {

class NetworkLab {
public:
    // Empty when the lab can be built here, else why not.
    static std::string unavailable();
    explicit NetworkLab(int hosts);  // throws std::runtime_error when a step fails (after undoing the others)
    ~NetworkLab();
    NetworkLab(const NetworkLab&) = delete;
    NetworkLab& operator=(const NetworkLab&) = delete;

    static constexpr const char* kBrokerAddress = "10.77.0.1";
    // Host i (1-based): its namespace, and its address there.
    const std::string& ns(int host) const { return hosts_.at(host - 1).ns; }
    std::string address(int host) const { return "10.77." + std::to_string(host) + ".2"; }
    // The command that runs `argv` in host i's namespace.
    std::vector<std::string> in_ns(int host, std::vector<std::string> argv) const;

    void cut(int host);      // its link goes down: nothing passes either way
    void restore(int host);  // back up, with its route
    // Both directions of host i's link drop and delay packets: netem `loss 5% delay 20ms` where the kernel has
    // netem, else a token bucket of 256 kbit/s whose queue holds 2 ms (it drops what overflows). Says which.
    std::string make_lossy(int host);
    // Packets the queueing disciplines of host i's link dropped so far (both directions).
    long dropped(int host) const;

private:
    struct Host {
        std::string ns, here, there;  // namespace, veth ends
    };
    std::string tag_;  // unique per process
    std::string broker_link_, broker_peer_;
    std::vector<Host> hosts_;
    void teardown();
};

}  // namespace mephisto::test
