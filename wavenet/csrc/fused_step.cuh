// A fused, persistent WaveNet generation kernel for batch 1 (nv-wavenet's idea, written anew).
//
// One launch samples a whole chunk. Per-op GPU steps are launch-bound (~1k samples/s), so here
// every thread block stays resident for the chunk and blocks hand data to each other through
// global memory guarded by counters ("sample t is ready"):
//
//   chain blocks 0..chains-1  each owns `per_block` consecutive residual layers, keeps their
//                             dilated and residual weights in shared memory, and passes the
//                             residual signal x to the next chain block. Chain block 0 also
//                             samples from the previous step's logits and embeds the new sample.
//   worker blocks 0..W-1      each owns a slice of the skip channels, of the first head layer's
//                             outputs and of the logits; it accumulates its skip slice layer by
//                             layer while the chain is still running further down.
//
// Only the residual chain, the last layers' skip, the two head layers and the sampling sit on
// the critical path of a sample. Single-slot hand-over buffers are safe because sampling is
// autoregressive: nothing for sample t+1 is written before every read for sample t is done
// (chain block 0 waits for all logits of t, which come after all reads of t).
//
// The same source compiles three ways: NVRTC at run time (the GPU), and g++ through
// fused_emulator.cpp, which runs every block as a CPU thread with the same work split
// (NV "virtual threads" per block), so its correctness is tested without a GPU.
#pragma once

#if defined(__CUDACC__) || defined(__CUDACC_RTC__)
#define WN_DEVICE __device__ __forceinline__
#define WN_THREAD threadIdx.x
#define WN_THREADS blockDim.x
#define WN_SYNC() __syncthreads()
#define WN_UNROLL_8 _Pragma("unroll 8")
typedef unsigned long long wn_u64;
typedef long long wn_i64;
WN_DEVICE float wn_load_handover(const float* p) { return __ldcg(p); }
WN_DEVICE void wn_store_handover(float* p, float v) { __stcg(p, v); }
WN_DEVICE int wn_flag_load(const int* p) { return *(const volatile int*)p; }
WN_DEVICE void wn_flag_store(int* p, int v) { __threadfence(); *(volatile int*)p = v; }
WN_DEVICE void wn_after_wait() { __threadfence(); }
WN_DEVICE void wn_spin() {}
WN_DEVICE float wn_half_to_float(unsigned short h) {
    float f;
    asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h));
    return f;
}
#else
// CPU emulation (fused_emulator.cpp): one OS thread per block, one thread runs all NV virtual
// threads of a phase in turn, so a phase between two WN_SYNC()s is a plain loop.
#include <math.h>
#include <thread>
#define WN_DEVICE inline
#define WN_THREAD 0
#define WN_THREADS 1
#define WN_SYNC() ((void)0)
#define WN_UNROLL_8 _Pragma("GCC unroll 8")
#define __global__
typedef unsigned long long wn_u64;
typedef long long wn_i64;
inline float wn_load_handover(const float* p) { return *p; }
inline void wn_store_handover(float* p, float v) { *p = v; }
inline int wn_flag_load(const int* p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
inline void wn_flag_store(int* p, int v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }
inline void wn_after_wait() {}
inline void wn_spin() { std::this_thread::yield(); }
inline float wn_half_to_float(unsigned short h) {  // IEEE binary16 -> float, as the GPU's cvt
    const int exponent = (h >> 10) & 0x1f, mantissa = h & 0x3ff;
    float value;
    if (exponent == 0) value = ldexpf((float)mantissa, -24);
    else if (exponent == 31) value = mantissa ? NAN : INFINITY;
    else value = ldexpf((float)(mantissa | 0x400), exponent - 25);
    return (h & 0x8000) ? -value : value;
}
#endif

// Virtual threads per block: the work split every phase uses (the GPU launches this many).
#define WN_NV 256

// Every field is 8 bytes wide so the layout is the same for ctypes, g++ and NVRTC.
struct FusedParams {
    const float* weights;       // packed as wavenet/fastpath.py pack_weights (input-major)
    const unsigned short* weights_half;  // the same array as IEEE half, or null: the chain
                                // blocks then keep their matrices in half precision (twice the
                                // layers per block, half the hand-overs); biases stay float
    const wn_i64* ring_offset;  // per layer: offset of its ring buffer [dilation][R] in state
    const wn_i64* dilation;     // per layer
    float* state;               // the ring buffers
    wn_i64* control;            // [position, current sample, RNG state, error]
    unsigned char* out;         // [n] sampled μ-law indices
    float* logits_out;          // [n][C] or null (the oracle tests)
    float* scratch;             // hand-over buffers: x [chains][R], z [L][D], h0 [S], h1 [S], logits [C]
    int* flags;                 // counters: chain [chains], skip [W], head [W], logits [W]
    wn_i64 L, R, D, S, C, per_block, chains, workers, n, sample, shared_floats;
    double temperature;
    double min_p;               // classes under min_p x the likeliest one's probability are never drawn
};

enum FusedError { WN_OK = 0, WN_SHARED_TOO_SMALL = 1 };

// Waits until counter `flag` reaches `target` (one virtual thread per flag), then syncs.
WN_DEVICE void wn_wait_all(const int* flags, int count, int target) {
    for (int v = WN_THREAD; v < count; v += WN_THREADS)
        while (wn_flag_load(flags + v) < target) wn_spin();
    wn_after_wait();
    WN_SYNC();
}

// Publishes: everything this block wrote before is visible once `flag` reads `value`.
WN_DEVICE void wn_publish(int* flag, int value) {
    WN_SYNC();
    if (WN_THREAD == 0) wn_flag_store(flag, value);
}

// out-of-place partial products: part[s][o] = sum over inputs i = s, s+ks, ... of x[i] * W[i][o]
// (W input-major with row stride `stride`), ks = number of input splits for `outputs` outputs.
WN_DEVICE int wn_splits(int outputs, int inputs) {
    int ks = WN_NV / outputs;
    if (ks < 1) ks = 1;
    if (ks > inputs) ks = inputs;
    return ks;
}

WN_DEVICE float wn_to_float(float w) { return w; }
WN_DEVICE float wn_to_float(unsigned short w) { return wn_half_to_float(w); }

template <typename T>
WN_DEVICE void wn_partials(float* part, const float* x, const T* W, int stride, int outputs, int inputs, int ks) {
    for (int v = WN_THREAD; v < ks * outputs; v += WN_THREADS) {
        const int o = v % outputs, s = v / outputs;
        float acc = 0.f;
        WN_UNROLL_8  // the loads of 8 steps issue together: one shared-memory latency, not 8 in a row
        for (int i = s; i < inputs; i += ks) acc += x[i] * wn_to_float(W[(wn_i64)i * stride + o]);
        part[v] = acc;
    }
}

WN_DEVICE float wn_sum_partials(const float* part, int o, int outputs, int ks) {
    float acc = 0.f;
    for (int s = 0; s < ks; ++s) acc += part[s * outputs + o];
    return acc;
}

WN_DEVICE float wn_sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }

WN_DEVICE double wn_uniform01(wn_u64* s) {  // splitmix64, as the CPU step
    wn_u64 z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return (double)(z >> 11) * (1.0 / 9007199254740992.0);
}

struct WnLayout {  // offsets into the packed weights
    wn_i64 layer0, layer_size, end1, end1_b, end2, end2_b;
};

WN_DEVICE WnLayout wn_layout(const FusedParams& p) {
    WnLayout w;
    const wn_i64 twoD = 2 * p.D, RS = p.R + p.S;
    w.layer0 = p.C * p.R;
    w.layer_size = 2 * p.R * twoD + twoD + p.D * RS + RS;
    w.end1 = w.layer0 + w.layer_size * p.L;
    w.end1_b = w.end1 + p.S * p.S;
    w.end2 = w.end1_b + p.S;
    w.end2_b = w.end2 + p.S * p.C;
    return w;
}

WN_DEVICE int wn_max3(int a, int b, int c) { return a > b ? (a > c ? a : c) : (b > c ? b : c); }

// Shared memory (in floats) a chain block with `count` layers needs; see its carve-out.
// Floats one chain layer's matrices (dilated [2R][2D] and residual [D][R]) take in shared memory.
WN_DEVICE wn_i64 wn_matrix_floats(const FusedParams& p) {
    const wn_i64 elements = 5 * p.R * p.D;
    return p.weights_half ? (elements + 1) / 2 : elements;
}

WN_DEVICE wn_i64 wn_chain_floats(const FusedParams& p, wn_i64 count) {
    const wn_i64 R = p.R, D = p.D, C = p.C;
    const wn_i64 layer = wn_matrix_floats(p) + 2 * D + R;
    return 2 * (2 * C + 2) + (C + 2) + 2 * C + count * (layer + 2 * R) + wn_max3(WN_NV, (int)(2 * D), (int)R) + D;
}

WN_DEVICE wn_i64 wn_worker_floats(const FusedParams& p) {
    const wn_i64 S = p.S, cs = p.S / p.workers, co = p.C / p.workers;
    return S * cs + cs + S * co + co + cs + (cs > co ? cs : co) + S + p.per_block * p.D + wn_max3(WN_NV, (int)cs, (int)co);
}

// Picks the next sample from `logits` [C] (shared memory) on all virtual threads; C must be a
// power of two. Greedy at temperature <= 0 (lowest index among equal maxima, like argmax); else
// drawn from softmax(logits / temperature) without the classes under min_p times the likeliest.
WN_DEVICE int wn_choose(const FusedParams& p, const float* logits, float* val, int* idx, double* scan,
                        wn_u64* rng, int* chosen) {
    const int C = (int)p.C;
    for (int c = WN_THREAD; c < C; c += WN_THREADS) { val[c] = logits[c]; idx[c] = c; }
    WN_SYNC();
    for (int half = C / 2; half > 0; half /= 2) {
        for (int v = WN_THREAD; v < half; v += WN_THREADS) {
            const int o = v + half;
            if (val[o] > val[v] || (val[o] == val[v] && idx[o] < idx[v])) { val[v] = val[o]; idx[v] = idx[o]; }
        }
        WN_SYNC();
    }
    if (p.temperature <= 0) return idx[0];
    const float top = val[0], temperature = (float)p.temperature, min_p = (float)p.min_p;
    WN_SYNC();
    for (int c = WN_THREAD; c < C; c += WN_THREADS) {
        const float weight = expf((logits[c] - top) / temperature);
        scan[c] = weight < min_p ? 0.0 : (double)weight;
    }
    WN_SYNC();
    double* from = scan;
    double* to = scan + C;
    for (int offset = 1; offset < C; offset *= 2) {  // inclusive prefix sum
        for (int c = WN_THREAD; c < C; c += WN_THREADS) to[c] = from[c] + (c >= offset ? from[c - offset] : 0.0);
        WN_SYNC();
        double* swap = from; from = to; to = swap;
    }
    if (WN_THREAD == 0) {
        const double target = wn_uniform01(rng) * from[C - 1];
        *chosen = C - 1;
        scan[2 * C] = target;
    }
    WN_SYNC();
    const double target = scan[2 * C];
    for (int c = WN_THREAD; c < C; c += WN_THREADS)
        if (from[c] > target && (c == 0 || from[c - 1] <= target)) *chosen = c;
    WN_SYNC();
    return *chosen;
}

// The packed weights in the element type the chain blocks keep.
WN_DEVICE const float* wn_matrices(const FusedParams& p, const float*) { return p.weights; }
WN_DEVICE const unsigned short* wn_matrices(const FusedParams& p, const unsigned short*) { return p.weights_half; }

template <typename T>
WN_DEVICE void wn_chain_block(const FusedParams& p, int k, float* shared) {
    const int R = (int)p.R, D = (int)p.D, C = (int)p.C, twoD = 2 * D;
    const int first = k * (int)p.per_block;
    const int count = (int)((first + p.per_block <= p.L) ? p.per_block : p.L - first);
    const WnLayout lay = wn_layout(p);
    const int ks_h = wn_splits(twoD, 2 * R), ks_r = wn_splits(R, D);
    const wn_i64 dil = 2 * R * twoD, res = (wn_i64)D * R;    // matrix elements per layer
    const wn_i64 layer_floats = wn_matrix_floats(p) + twoD + R;  // matrices, then float biases
    // Shared memory: sampler scratch (doubles first), then weights, inputs, partials, z.
    double* scan = (double*)shared;                        // 2C + 1 doubles
    int* idx = (int*)(scan + 2 * C + 2);                    // C ints
    int* chosen = idx + C;                                  // 1 (+1 pad)
    float* val = (float*)(chosen + 2);                      // C
    float* logits = val + C;                                // C
    float* weights = logits + C;                            // count * layer_floats
    float* in = weights + count * layer_floats;             // count * 2R: [past; x] per layer
    float* part = in + count * 2 * R;                       // max(NV, 2D, R)
    float* z = part + wn_max3(WN_NV, twoD, R);
    const T* matrices = wn_matrices(p, (const T*)0);
    for (int j = 0; j < count; ++j) {
        const wn_i64 base = lay.layer0 + lay.layer_size * (first + j);  // [2R][2D], [2D], [D][R + S], [R + S]
        T* matrix = (T*)(weights + j * layer_floats);
        float* bias = weights + j * layer_floats + wn_matrix_floats(p);
        for (wn_i64 v = WN_THREAD; v < dil; v += WN_THREADS) matrix[v] = matrices[base + v];
        for (wn_i64 v = WN_THREAD; v < res; v += WN_THREADS)  // the residual columns of [D][R + S]
            matrix[dil + v] = matrices[base + dil + twoD + (v / R) * (R + p.S) + v % R];
        for (int v = WN_THREAD; v < twoD; v += WN_THREADS) bias[v] = p.weights[base + dil + v];
        for (int v = WN_THREAD; v < R; v += WN_THREADS) bias[twoD + v] = p.weights[base + dil + twoD + res + p.S * D + v];
    }
    wn_u64 rng = (wn_u64)p.control[2];
    int current = (int)p.control[1];
    const wn_i64 position = p.control[0];
    WN_SYNC();
    const int steps = (int)p.n;
    for (int t = 0; t <= steps; ++t) {
        if (k == 0 && t > 0) {  // sample t-1's logits -> the input of step t
            wn_wait_all(p.flags + p.chains + 2 * p.workers, (int)p.workers, t);
            for (int c = WN_THREAD; c < C; c += WN_THREADS) logits[c] = wn_load_handover(p.scratch + p.chains * R + p.L * D + 2 * p.S + c);
            WN_SYNC();
            if (p.sample) {
                current = wn_choose(p, logits, val, idx, scan, &rng, chosen);
                if (WN_THREAD == 0) p.out[t - 1] = (unsigned char)current;
            }
        }
        if (t == steps) break;
        const wn_i64 pos = position + t;
        for (int j = 0; j < count; ++j) {  // the past inputs do not depend on this step: read them first
            const int l = first + j;
            const float* ring = p.state + p.ring_offset[l] + (pos % p.dilation[l]) * R;
            for (int i = WN_THREAD; i < R; i += WN_THREADS) in[j * 2 * R + i] = ring[i];
        }
        if (k == 0) {
            const float* e = p.weights + (wn_i64)current * R;
            for (int i = WN_THREAD; i < R; i += WN_THREADS) in[R + i] = e[i];
        } else {
            wn_wait_all(p.flags + (k - 1), 1, t + 1);
            for (int i = WN_THREAD; i < R; i += WN_THREADS) in[R + i] = wn_load_handover(p.scratch + (wn_i64)(k - 1) * R + i);
        }
        WN_SYNC();
        for (int j = 0; j < count; ++j) {
            const int l = first + j;
            const T* wd = (const T*)(weights + j * layer_floats);
            const T* wr = wd + dil;
            const float* bias = weights + j * layer_floats + wn_matrix_floats(p);  // [2D] then [R]
            float* x = in + j * 2 * R + R;
            wn_partials(part, in + j * 2 * R, wd, twoD, twoD, 2 * R, ks_h);
            WN_SYNC();
            float* ring = p.state + p.ring_offset[l] + (pos % p.dilation[l]) * R;
            for (int i = WN_THREAD; i < R; i += WN_THREADS) ring[i] = x[i];
            for (int o = WN_THREAD; o < D; o += WN_THREADS) {
                const float f = bias[o] + wn_sum_partials(part, o, twoD, ks_h);
                const float g = bias[D + o] + wn_sum_partials(part, D + o, twoD, ks_h);
                z[o] = tanhf(f) * wn_sigmoid(g);
                wn_store_handover(p.scratch + p.chains * R + (wn_i64)l * D + o, z[o]);
            }
            WN_SYNC();
            if (l == p.L - 1) break;  // the last layer's residual output feeds nothing
            wn_partials(part, z, wr, R, R, D, ks_r);
            WN_SYNC();
            for (int o = WN_THREAD; o < R; o += WN_THREADS) {
                const float next = x[o] + bias[twoD + o] + wn_sum_partials(part, o, R, ks_r);
                if (j + 1 < count) in[(j + 1) * 2 * R + R + o] = next;
                else wn_store_handover(p.scratch + (wn_i64)k * R + o, next);
            }
            WN_SYNC();
        }
        wn_publish(p.flags + k, t + 1);
    }
    if (k == 0 && WN_THREAD == 0) {
        p.control[0] = position + steps;
        p.control[1] = current;
        p.control[2] = (wn_i64)rng;
    }
}

// One head layer's slice: gathers the whole input `from` [S] that all workers wrote, then
// result[o] = bias[o] + sum_i from[i] * W[i][o] for this block's `cols` outputs.
WN_DEVICE void wn_head_slice(float* result, float* vec, float* part, const float* from, const float* W,
                             const float* bias, int cols, int S, int ks) {
    for (int i = WN_THREAD; i < S; i += WN_THREADS) vec[i] = wn_load_handover(from + i);
    WN_SYNC();
    wn_partials(part, vec, W, cols, cols, S, ks);
    WN_SYNC();
    for (int o = WN_THREAD; o < cols; o += WN_THREADS) result[o] = bias[o] + wn_sum_partials(part, o, cols, ks);
    WN_SYNC();
}

WN_DEVICE void wn_worker_block(const FusedParams& p, int w, float* shared) {
    const int R = (int)p.R, D = (int)p.D, S = (int)p.S, C = (int)p.C, W = (int)p.workers;
    const int cs = S / W, co = C / W, c0 = w * cs, o0 = w * co;
    const WnLayout lay = wn_layout(p);
    const int ks_s = wn_splits(cs, D), ks_1 = wn_splits(cs, S), ks_2 = wn_splits(co, S);
    const int part_size = wn_max3(WN_NV, cs, co);
    float* w1 = shared;                               // [S][cs]: this block's columns of end1
    float* b1 = w1 + (wn_i64)S * cs;                  // [cs]
    float* w2 = b1 + cs;                              // [S][co]: its columns of end2
    float* b2 = w2 + (wn_i64)S * co;                  // [co]
    float* skip_bias = b2 + co;                       // [cs]: all layers' skip biases, summed
    float* acc = skip_bias + cs;                      // [max(cs, co)]: skip sums, then head outputs
    float* vec = acc + (cs > co ? cs : co);           // [S]
    float* zs = vec + S;                              // [per_block][D]
    float* part = zs + p.per_block * D;               // part_size
    const float* end1 = p.weights + lay.end1;
    const float* end2 = p.weights + lay.end2;
    for (wn_i64 v = WN_THREAD; v < (wn_i64)S * cs; v += WN_THREADS) w1[v] = end1[(v / cs) * S + c0 + v % cs];
    for (wn_i64 v = WN_THREAD; v < (wn_i64)S * co; v += WN_THREADS) w2[v] = end2[(v / co) * C + o0 + v % co];
    for (int v = WN_THREAD; v < cs; v += WN_THREADS) {
        b1[v] = p.weights[lay.end1_b + c0 + v];
        float total = 0.f;
        for (int l = 0; l < p.L; ++l)
            total += p.weights[lay.layer0 + lay.layer_size * l + (lay.layer_size - (R + S)) + R + c0 + v];
        skip_bias[v] = total;
    }
    for (int v = WN_THREAD; v < co; v += WN_THREADS) b2[v] = p.weights[lay.end2_b + o0 + v];
    WN_SYNC();
    const float* z_all = p.scratch + p.chains * R;
    float* h0 = p.scratch + p.chains * R + p.L * D;
    float* h1 = h0 + S;
    float* logits = h1 + S;
    int* chain_flags = p.flags;
    int* skip_flags = chain_flags + p.chains;
    int* head_flags = skip_flags + W;
    int* logit_flags = head_flags + W;
    const wn_i64 res_skip_offset = 2 * R * 2 * D + 2 * D;  // within a layer: the [D][R + S] matrix
    for (int t = 0; t < p.n; ++t) {
        for (int v = WN_THREAD; v < cs; v += WN_THREADS) acc[v] = skip_bias[v];
        for (int k = 0; k < p.chains; ++k) {  // accumulate each chain block's skips as it finishes
            wn_wait_all(chain_flags + k, 1, t + 1);
            const int first = k * (int)p.per_block;
            const int count = (int)((first + p.per_block <= p.L) ? p.per_block : p.L - first);
            for (int v = WN_THREAD; v < count * D; v += WN_THREADS) zs[v] = wn_load_handover(z_all + (wn_i64)first * D + v);
            WN_SYNC();
            for (int j = 0; j < count; ++j) {
                const float* ws = p.weights + lay.layer0 + lay.layer_size * (first + j) + res_skip_offset + R + c0;
                wn_partials(part, zs + j * D, ws, R + S, cs, D, ks_s);
                WN_SYNC();
                for (int o = WN_THREAD; o < cs; o += WN_THREADS) acc[o] += wn_sum_partials(part, o, cs, ks_s);
                WN_SYNC();
            }
        }
        for (int o = WN_THREAD; o < cs; o += WN_THREADS) wn_store_handover(h0 + c0 + o, acc[o] > 0.f ? acc[o] : 0.f);
        wn_publish(skip_flags + w, t + 1);
        wn_wait_all(skip_flags, W, t + 1);
        wn_head_slice(acc, vec, part, h0, w1, b1, cs, S, ks_1);
        for (int o = WN_THREAD; o < cs; o += WN_THREADS) wn_store_handover(h1 + c0 + o, acc[o] > 0.f ? acc[o] : 0.f);
        wn_publish(head_flags + w, t + 1);
        wn_wait_all(head_flags, W, t + 1);
        wn_head_slice(acc, vec, part, h1, w2, b2, co, S, ks_2);
        for (int o = WN_THREAD; o < co; o += WN_THREADS) {
            wn_store_handover(logits + o0 + o, acc[o]);
            if (p.logits_out) p.logits_out[(wn_i64)t * C + o0 + o] = acc[o];
        }
        wn_publish(logit_flags + w, t + 1);
    }
}

extern "C" __global__ void wavenet_fused(FusedParams p) {
#if defined(__CUDACC__) || defined(__CUDACC_RTC__)
    extern __shared__ double wn_shared_memory[];
    float* shared = (float*)wn_shared_memory;
    const int block = blockIdx.x;
#else
    float* shared = wn_emulated_shared();
    const int block = wn_emulated_block();
#endif
    // Every block checks the same sizes, so either all run or all return (no one waits forever).
    if (wn_chain_floats(p, p.per_block) > p.shared_floats || wn_worker_floats(p) > p.shared_floats) {
        if (block == 0 && WN_THREAD == 0) p.control[3] = WN_SHARED_TOO_SMALL;
        return;
    }
    if (block < p.chains && p.weights_half) wn_chain_block<unsigned short>(p, block, shared);
    else if (block < p.chains) wn_chain_block<float>(p, block, shared);
    else wn_worker_block(p, block - (int)p.chains, shared);
}
