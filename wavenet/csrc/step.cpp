// One-sample WaveNet steps for the CPU, batch of B streams, float32 arithmetic.
//
// Weights are one flat array laid out input-major (W[in][out]) so every product is a run of
// contiguous axpy updates that the compiler vectorises; see wavenet/fastpath.py for the
// layout. Ring buffers (state) belong to the caller: nothing here outlives a call, so any
// number of generations may run at once on one set of weights.
//
// At the shipped widths on an AVX-512 (or AVX2 + F16C + FMA) CPU the products are written
// with intrinsics and may read their matrices from an IEEE-half copy of the weights (same
// layout): one stream's step is bound by streaming ~2 MB of float32 matrices from L3 per
// sample, and half the bytes is about half the time. Sums, biases and activations stay float32.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>
#if defined(__AVX512F__) || defined(__AVX2__)
#include <immintrin.h>
#endif

namespace {

inline void axpy(float* __restrict y, const float* __restrict w, float a, int n) {
#pragma omp simd
    for (int i = 0; i < n; ++i) y[i] += a * w[i];
}

// y[N] = y0[N] + sum_i x[i] * W[i][N] for a compile-time N: the accumulators stay in vector
// registers (two interleaved sets where they fit, halving the FMA dependency chain) instead of
// being stored and reloaded after every row as the runtime-width axpy loop does.
template <int N>
inline void matvec(float* __restrict y, const float* __restrict y0, const float* __restrict W,
                   const float* __restrict x, int rows) {
    constexpr bool split = N <= 160;
    float a0[N], a1[N];
#pragma omp simd
    for (int j = 0; j < N; ++j) { a0[j] = y0[j]; a1[j] = 0.f; }
    int i = 0;
    if (split) {
        for (; i + 1 < rows; i += 2) {
            const float x0 = x[i], x1 = x[i + 1];
            const float* w0 = W + (size_t)i * N;
            const float* w1 = w0 + N;
#pragma omp simd
            for (int j = 0; j < N; ++j) { a0[j] += x0 * w0[j]; a1[j] += x1 * w1[j]; }
        }
    }
    for (; i < rows; ++i) {
        const float xi = x[i];
        const float* w = W + (size_t)i * N;
#pragma omp simd
        for (int j = 0; j < N; ++j) a0[j] += xi * w[j];
    }
#pragma omp simd
    for (int j = 0; j < N; ++j) y[j] = a0[j] + a1[j];
}

// Vector registers for the fixed-width products: AVX-512 (16 floats, 32 registers) or
// AVX2 with F16C and FMA (8 floats, 16 registers); elsewhere the portable loop above.
#if defined(__AVX512F__)
#define WAVENET_VECTOR_PRODUCTS 1
using Vec = __m512;
constexpr int kLanes = 16, kRegisters = 32;
inline Vec load(const float* w) { return _mm512_loadu_ps(w); }
inline Vec load(const uint16_t* w) { return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i*)w)); }
inline Vec broadcast(float v) { return _mm512_set1_ps(v); }
inline Vec fmadd(Vec a, Vec b, Vec c) { return _mm512_fmadd_ps(a, b, c); }
inline Vec add(Vec a, Vec b) { return _mm512_add_ps(a, b); }
inline Vec zero() { return _mm512_setzero_ps(); }
inline void store(float* y, Vec v) { _mm512_storeu_ps(y, v); }
#elif defined(__AVX2__) && defined(__F16C__) && defined(__FMA__)
#define WAVENET_VECTOR_PRODUCTS 1
using Vec = __m256;
constexpr int kLanes = 8, kRegisters = 16;
inline Vec load(const float* w) { return _mm256_loadu_ps(w); }
inline Vec load(const uint16_t* w) { return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i*)w)); }
inline Vec broadcast(float v) { return _mm256_set1_ps(v); }
inline Vec fmadd(Vec a, Vec b, Vec c) { return _mm256_fmadd_ps(a, b, c); }
inline Vec add(Vec a, Vec b) { return _mm256_add_ps(a, b); }
inline Vec zero() { return _mm256_setzero_ps(); }
inline void store(float* y, Vec v) { _mm256_storeu_ps(y, v); }
#else
#define WAVENET_VECTOR_PRODUCTS 0
#endif
constexpr bool kVectorProducts = WAVENET_VECTOR_PRODUCTS;

#if WAVENET_VECTOR_PRODUCTS
// matvec with explicit vector registers; W is float or IEEE half (uint16_t bits).
template <int N, typename Weight>
inline void matvec_vec(float* __restrict y, const float* __restrict y0, const Weight* __restrict W,
                       const float* __restrict x, int rows) {
    static_assert(N % kLanes == 0, "widths are multiples of the vector width");
    constexpr int V = N / kLanes;
    constexpr bool split = 2 * V + 2 <= kRegisters;  // two accumulator sets while they fit
    Vec a0[V], a1[V];
    for (int v = 0; v < V; ++v) { a0[v] = load(y0 + kLanes * v); a1[v] = zero(); }
    int i = 0;
    if (split) {
        for (; i + 1 < rows; i += 2) {
            const Vec x0 = broadcast(x[i]), x1 = broadcast(x[i + 1]);
            const Weight* w0 = W + (size_t)i * N;
            const Weight* w1 = w0 + N;
            for (int v = 0; v < V; ++v) {
                a0[v] = fmadd(x0, load(w0 + kLanes * v), a0[v]);
                a1[v] = fmadd(x1, load(w1 + kLanes * v), a1[v]);
            }
        }
    }
    for (; i < rows; ++i) {
        const Vec xi = broadcast(x[i]);
        const Weight* w = W + (size_t)i * N;
        for (int v = 0; v < V; ++v) a0[v] = fmadd(xi, load(w + kLanes * v), a0[v]);
    }
    for (int v = 0; v < V; ++v) store(y + kLanes * v, add(a0[v], a1[v]));
}
#endif

// The fixed-width products: vector registers with float or half matrices where the CPU has
// them, else the portable float loop (which then ignores `halves`).
template <int N>
inline void product(float* y, const float* y0, const float* W, const uint16_t* halves, const float* weights,
                    const float* x, int rows) {
#if WAVENET_VECTOR_PRODUCTS
    if (halves) return matvec_vec<N>(y, y0, halves + (W - weights), x, rows);
    return matvec_vec<N>(y, y0, W, x, rows);
#else
    (void)halves, (void)weights;
    matvec<N>(y, y0, W, x, rows);
#endif
}

inline float fast_sigmoid(float x) { return 1.0f / (1.0f + std::exp(-x)); }

inline double uniform01(uint64_t* s) {  // splitmix64: reproducible from the seed alone
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return (z >> 11) * (1.0 / 9007199254740992.0);
}

// The step with its widths known at compile time where the template arguments are non-zero:
// fixed trip counts let the compiler keep accumulators in vector registers and unroll.
template <int RT, int DT, int ST>
int run_impl(const float* weights, const uint16_t* halves, const int32_t* dilations, int32_t layers, int32_t R_, int32_t D_,
             int32_t S_, int32_t C, int32_t B, float* state, int64_t* position, int32_t* current,
             int32_t n_samples, float temperature, float min_p, uint64_t* rng, uint8_t* out, float* logits,
             const volatile int32_t* cancel) {
    const int R = RT ? RT : R_, D = DT ? DT : D_, S = ST ? ST : S_;
    const int twoD = 2 * D, RS = R + S;
    std::vector<float> x(B * R), skip(B * S), lg(C);
    const float* embed = weights;
    const size_t layer_size = (size_t)R * twoD * 2 + twoD + (size_t)D * RS + RS;
    const float* layer0 = embed + (size_t)C * R;
    const float* end1 = layer0 + layer_size * layers;
    const float* end1_b = end1 + (size_t)S * S;
    const float* end2 = end1_b + S;
    const float* end2_b = end2 + (size_t)S * C;
    // Per-layer offsets into the state: layer l holds [B][dilation][R].
    std::vector<size_t> state_offset(layers);
    size_t offset = 0;
    for (int l = 0; l < layers; ++l) { state_offset[l] = offset; offset += (size_t)B * dilations[l] * R; }

    // Loops run weight row outermost and stream innermost: each row is read from memory once
    // per sample for all B streams, which is what makes several variations cheap.
    std::vector<float> hb(B * twoD), zb(B * D), ob(B * RS), h1b(B * S), logits_all(B * C);
    std::vector<float*> rings(B);
    const int steps = n_samples > 0 ? n_samples : 1;
    for (int t = 0; t < steps; ++t) {
        if (cancel && *cancel) return t;
        const int64_t pos = *position;
        for (int b = 0; b < B; ++b) {
            std::memcpy(&x[b * R], embed + (size_t)current[b] * R, R * sizeof(float));
            std::memset(&skip[b * S], 0, S * sizeof(float));
        }
        if constexpr (RT > 0) {
            // Fixed widths: per stream, [ring; x] times the stacked [past; now] weights in one
            // register-resident product, then the residual/skip product, then the head.
            constexpr int TWO_D = 2 * DT, RSN = RT + ST;
            alignas(64) float in[2 * RT], h[TWO_D], z[DT], o[RSN], h1[ST], relu_skip[ST];
            for (int l = 0; l < layers; ++l) {
                const float* w_past = layer0 + layer_size * l;
                const float* bias = w_past + (size_t)2 * RT * TWO_D;
                const float* w_rs = bias + TWO_D;
                const float* b_rs = w_rs + (size_t)DT * RSN;
                const int d = dilations[l];
                const int slot = (int)(pos % d);
                for (int b = 0; b < B; ++b) {
                    float* ring = state + state_offset[l] + ((size_t)b * d + slot) * RT;
                    float* xb = &x[b * RT];
                    std::memcpy(in, ring, RT * sizeof(float));
                    std::memcpy(in + RT, xb, RT * sizeof(float));
                    std::memcpy(ring, xb, RT * sizeof(float));
                    product<TWO_D>(h, bias, w_past, halves, weights, in, 2 * RT);
#pragma omp simd
                    for (int j = 0; j < DT; ++j) z[j] = std::tanh(h[j]) * fast_sigmoid(h[DT + j]);
                    product<RSN>(o, b_rs, w_rs, halves, weights, z, DT);
                    float* sb = &skip[b * ST];
#pragma omp simd
                    for (int i = 0; i < RT; ++i) xb[i] += o[i];
#pragma omp simd
                    for (int i = 0; i < ST; ++i) sb[i] += o[RT + i];
                }
            }
            for (int b = 0; b < B; ++b) {
#pragma omp simd
                for (int i = 0; i < ST; ++i) relu_skip[i] = skip[b * ST + i] > 0 ? skip[b * ST + i] : 0.f;
                product<ST>(h1, end1_b, end1, halves, weights, relu_skip, ST);
#pragma omp simd
                for (int i = 0; i < ST; ++i) h1[i] = h1[i] > 0 ? h1[i] : 0.f;
                product<256>(&logits_all[b * C], end2_b, end2, halves, weights, h1, ST);
            }
        } else {
        for (int l = 0; l < layers; ++l) {
            const float* w_past = layer0 + layer_size * l;
            const float* w_now = w_past + (size_t)R * twoD;
            const float* bias = w_now + (size_t)R * twoD;
            const float* w_rs = bias + twoD;
            const float* b_rs = w_rs + (size_t)D * RS;
            const int d = dilations[l];
            const int slot = (int)(pos % d);
            for (int b = 0; b < B; ++b) {
                rings[b] = state + state_offset[l] + ((size_t)b * d + slot) * R;
                std::memcpy(&hb[b * twoD], bias, twoD * sizeof(float));
            }
            for (int i = 0; i < R; ++i)
                for (int b = 0; b < B; ++b) axpy(&hb[b * twoD], w_past + (size_t)i * twoD, rings[b][i], twoD);
            for (int i = 0; i < R; ++i)
                for (int b = 0; b < B; ++b) axpy(&hb[b * twoD], w_now + (size_t)i * twoD, x[b * R + i], twoD);
            for (int b = 0; b < B; ++b) {
                std::memcpy(rings[b], &x[b * R], R * sizeof(float));
                const float* h = &hb[b * twoD];
                float* z = &zb[b * D];
#pragma omp simd
                for (int j = 0; j < D; ++j) z[j] = std::tanh(h[j]) * fast_sigmoid(h[D + j]);
                std::memcpy(&ob[b * RS], b_rs, RS * sizeof(float));
            }
            for (int j = 0; j < D; ++j)
                for (int b = 0; b < B; ++b) axpy(&ob[b * RS], w_rs + (size_t)j * RS, zb[b * D + j], RS);
            for (int b = 0; b < B; ++b) {
                const float* o = &ob[b * RS];
                float* xb = &x[b * R];
                float* sb = &skip[b * S];
#pragma omp simd
                for (int i = 0; i < R; ++i) xb[i] += o[i];
#pragma omp simd
                for (int i = 0; i < S; ++i) sb[i] += o[R + i];
            }
        }
        for (int b = 0; b < B; ++b) std::memcpy(&h1b[b * S], end1_b, S * sizeof(float));
        for (int i = 0; i < S; ++i)
            for (int b = 0; b < B; ++b)
                if (skip[b * S + i] > 0) axpy(&h1b[b * S], end1 + (size_t)i * S, skip[b * S + i], S);
        for (int b = 0; b < B; ++b) {
            const float* h1 = &h1b[b * S];
            std::memcpy(&logits_all[b * C], end2_b, C * sizeof(float));
            for (int i = 0; i < S; ++i) if (h1[i] > 0) axpy(&logits_all[b * C], end2 + (size_t)i * C, h1[i], C);
        }
        }  // runtime widths
        for (int b = 0; b < B; ++b) {
            std::memcpy(lg.data(), &logits_all[b * C], C * sizeof(float));
            if (n_samples == 0) {
                std::memcpy(logits + (size_t)b * C, lg.data(), C * sizeof(float));
                continue;
            }
            int chosen = 0;
            if (temperature <= 0) {
                for (int c = 1; c < C; ++c) if (lg[c] > lg[chosen]) chosen = c;
            } else {
                float top = lg[0];
                for (int c = 1; c < C; ++c) top = lg[c] > top ? lg[c] : top;
                double total = 0;
                // Relative to the likeliest class (weight 1): below min_p a class is never drawn.
                for (int c = 0; c < C; ++c) {
                    const float weight = std::exp((lg[c] - top) / temperature);
                    lg[c] = weight < min_p ? 0.0f : weight;
                    total += lg[c];
                }
                double target = uniform01(&rng[b]) * total, running = 0;
                chosen = C - 1;
                for (int c = 0; c < C; ++c) { running += lg[c]; if (running > target) { chosen = c; break; } }
            }
            current[b] = chosen;
            out[(size_t)b * n_samples + t] = (uint8_t)chosen;
        }
        *position = pos + 1;
    }
    return steps;
}

}  // namespace

extern "C" {

// Whether the shipped widths' products read IEEE-half matrices when given `halves`.
int wavenet_reads_half_weights() { return kVectorProducts; }

// Feeds `current[b]` and either returns the logits for the next sample in `logits` [B][C]
// (n_samples == 0: the oracle path), or samples n_samples new values per stream into
// out [B][n_samples] (classes under min_p times the likeliest one's probability are never
// drawn). Returns the number of steps done (fewer when `cancel` was set).
// `halves` (may be null) is the weights as IEEE half in the same layout; see the top.
int wavenet_run(const float* weights, const uint16_t* halves, const int32_t* dilations, int32_t layers, int32_t R, int32_t D,
                int32_t S, int32_t C, int32_t B, float* state, int64_t* position, int32_t* current,
                int32_t n_samples, float temperature, float min_p, uint64_t* rng, uint8_t* out, float* logits,
                const volatile int32_t* cancel) {
#define WAVENET_ARGS weights, halves, dilations, layers, R, D, S, C, B, state, position, current, n_samples, \
                     temperature, min_p, rng, out, logits, cancel
    if (C == 256 && R == 32 && D == 32 && S == 128) return run_impl<32, 32, 128>(WAVENET_ARGS);
    if (C == 256 && R == 32 && D == 32 && S == 256) return run_impl<32, 32, 256>(WAVENET_ARGS);
    return run_impl<0, 0, 0>(WAVENET_ARGS);
#undef WAVENET_ARGS
}

}  // extern "C"
