// engine/flops.cpp: the active FLOP counter of each thread.
#include "engine/flops.h"

namespace retort {

namespace {
thread_local FlopCounter* g_active = nullptr;
}

FlopCounter::FlopCounter() : previous_(g_active) { g_active = this; }
FlopCounter::~FlopCounter() { g_active = previous_; }

void add_flops(std::int64_t flops) {
    if (g_active) g_active->flops_ += flops;
}

}  // namespace retort
