// Coverage feedback for libFuzzer from GCC-instrumented code (BERTH_FUZZ with GCC; see CMakeLists.txt).
//
// GCC can only emit -fsanitize-coverage=trace-pc (a call per basic block) and trace-cmp; libFuzzer wants
// inline 8-bit counters. This file, compiled without instrumentation, counts each calling PC into a hashed
// counter table registered with libFuzzer as one module. Hash collisions only blur coverage a little.
#include <cstddef>
#include <cstdint>

extern "C" void __sanitizer_cov_8bit_counters_init(uint8_t* start, uint8_t* stop);

namespace {

constexpr size_t kSlots = size_t{1} << 16;
uint8_t counters[kSlots];

// Runs before other constructors so the counters are registered before any instrumented code executes.
__attribute__((constructor(101))) void register_counters() {
    __sanitizer_cov_8bit_counters_init(counters, counters + kSlots);
}

}  // namespace

// libFuzzer's own definition of this symbol only reports "not supported"; the build weakens it so this wins.
extern "C" void __sanitizer_cov_trace_pc() {
    auto pc = reinterpret_cast<uintptr_t>(__builtin_return_address(0));
    counters[(pc ^ (pc >> 16)) & (kSlots - 1)]++;
}

// GCC's trace-cmp also reports floating-point comparisons, for which libFuzzer has no hooks.
extern "C" void __sanitizer_cov_trace_cmpf(float, float) {}
extern "C" void __sanitizer_cov_trace_cmpd(double, double) {}
