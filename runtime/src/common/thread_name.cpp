#include "common/thread_name.hpp"

#include <pthread.h>

#include <string>

namespace mephisto {

void name_this_thread(std::string_view role) {
    std::string name = "mph-";
    name.append(role.substr(0, 11));  // the kernel keeps 15 bytes and the terminating zero
    pthread_setname_np(pthread_self(), name.c_str());
}

}  // namespace mephisto
