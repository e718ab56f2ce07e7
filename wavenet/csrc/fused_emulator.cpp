// Runs the fused GPU kernel (fused_step.cuh) on the CPU: every thread block becomes an OS
// thread with its own "shared memory", blocks talk through the same counters and buffers
// (acquire/release atomics), and each block runs its virtual threads phase by phase. It is
// slow and only for tests: it checks the kernel's arithmetic, its work split and its
// hand-over protocol without a GPU.
#include <cstdint>
#include <thread>
#include <vector>

namespace {
thread_local float* emulated_shared = nullptr;
thread_local int emulated_block = 0;
}  // namespace

inline float* wn_emulated_shared() { return emulated_shared; }
inline int wn_emulated_block() { return emulated_block; }

#include "fused_step.cuh"

extern "C" int wavenet_fused_emulate(const FusedParams* params, int blocks) {
    std::vector<std::thread> threads;
    threads.reserve(blocks);
    for (int b = 0; b < blocks; ++b) {
        threads.emplace_back([params, b]() {
            std::vector<double> shared((size_t)(params->shared_floats + 1) / 2 + 1);
            emulated_shared = reinterpret_cast<float*>(shared.data());
            emulated_block = b;
            wavenet_fused(*params);
        });
    }
    for (auto& thread : threads) thread.join();
    return (int)params->control[3];
}
