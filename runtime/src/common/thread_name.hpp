#pragma once
// Names the calling thread as `top -H`, `ps -L`, perf and gdb show it: "mph-<role>", cut to the 15 bytes Linux
// keeps. Operators of a shared host tell its threads apart by them (which pipeline's consumer, which worker).
#include <string_view>

namespace mephisto {

void name_this_thread(std::string_view role);

}  // namespace mephisto
