// Shared by the blas_dnn_*.cpp test programs: a stand-in device allocator whose registry answers
// emu_check_range (the libcuda stand-in's role), and the checking helpers.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

namespace test {

struct Block {
    uintptr_t at;
    size_t bytes;
};
inline std::vector<Block>& blocks() {
    static std::vector<Block> b;
    return b;
}

// A "device" buffer: host memory the range checks know about, exactly `bytes` long to them.
inline void* dev_bytes(size_t bytes) {
    void* p = std::aligned_alloc(256, (bytes / 256 + 1) * 256);
    blocks().push_back({reinterpret_cast<uintptr_t>(p), bytes});
    return p;
}

inline float* dev(size_t n) { return static_cast<float*>(dev_bytes(n * sizeof(float))); }

inline float* dev_copy(const std::vector<float>& v) {
    float* p = dev(v.size());
    std::memcpy(p, v.data(), v.size() * sizeof(float));
    return p;
}

inline std::vector<float> randoms(size_t n, unsigned seed) {
    std::mt19937 g(seed);
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    std::vector<float> v(n);
    for (auto& x : v) x = u(g);
    return v;
}

// TF32 rounding written differently from the libraries' bit trick: scale to 10 fractional
// mantissa bits, round half away from zero, scale back (normal numbers only).
inline double tf32_ref(float v) {
    if (v == 0.0f || !std::isfinite(v)) return v;
    const double q = std::ldexp(1.0, std::ilogb(v) - 10);
    return std::round(v / q) * q;
}

inline int failures = 0;

inline void expect(bool ok, const char* what) {
    if (!ok) {
        std::fprintf(stderr, "FAIL: %s\n", what);
        ++failures;
    }
}

inline void expect_status(int got, int want, const char* what) {
    if (got != want) {
        std::fprintf(stderr, "FAIL: %s: status %d, expected %d\n", what, got, want);
        ++failures;
    }
}

// got against a double reference; `mag` bounds the size of the terms summed into each element, so
// the tolerance is a few float roundings of the largest partial sum.
inline void expect_close(const float* got, const std::vector<double>& ref, const std::vector<double>& mag,
                         const char* what) {
    size_t bad = 0, first = 0;
    for (size_t i = 0; i < ref.size(); ++i) {
        const double tol = 1e-6 * (std::fabs(ref[i]) + mag[i]) + 1e-30;
        if (!(std::fabs(got[i] - ref[i]) <= tol)) {
            if (!bad) first = i;
            ++bad;
        }
    }
    if (bad) {
        std::fprintf(stderr, "FAIL: %s: %zu of %zu elements off, first [%zu] %.9g vs %.9g\n", what, bad, ref.size(),
                     first, got[first], ref[first]);
        ++failures;
    }
}

inline int finish(const char* name) {
    if (failures) {
        std::fprintf(stderr, "%s: %d failure(s)\n", name, failures);
        return 1;
    }
    std::printf("%s: all checks passed\n", name);
    return 0;
}

}  // namespace test

extern "C" int emu_check_range(unsigned long long ptr, size_t bytes) {
    for (const auto& b : test::blocks())
        if (ptr >= b.at && ptr + bytes <= b.at + b.bytes) return 1;
    return 0;
}
