// A streaming product of a few rows by weights no cache holds: y = b + x @ W per region.
//
// Why (issue 13, docs/design.md section 6): at batch 1 the step's library GEMMs read their cold
// weights at a third of the bandwidth of a plain sum. This kernel stores each (in, out) weight as
// out/64 tiles of (in x 64) floats, contiguous, so one product is one sequential read that the
// hardware prefetcher follows; up to 8 rows' accumulators stay in registers. k ascends for every output,
// whatever the row count, so every row's result is independent of its company by construction.
// Built only by benchmarks/matmul_cold.py (torch.utils.cpp_extension); the package does not use it.
#include <torch/extension.h>

namespace {

// MR rows by one tile's (K x 64) weights, a slice of W columns at a time (W = 64 for up to 4 rows,
// 32 for 5-8: MR x W accumulators fit the 32 vector registers); every weight byte is read once.
template <int MR, int W>
void tile_rows(const float* x, int64_t K, const float* tile, const float* b, float* y, int64_t N) {
  for (int h = 0; h < 64; h += W) {
    float acc[MR][W];
    for (int m = 0; m < MR; ++m)
      for (int j = 0; j < W; ++j) acc[m][j] = b[h + j];
    const float* p = tile + h;
    for (int64_t k = 0; k < K; ++k) {
      __builtin_prefetch(p + (k + 32) * 64, 0, 0);
      for (int m = 0; m < MR; ++m) {
        const float a = x[m * K + k];
#pragma omp simd
        for (int j = 0; j < W; ++j) acc[m][j] += a * p[k * 64 + j];
      }
    }
    for (int m = 0; m < MR; ++m)
      for (int j = 0; j < W; ++j) y[m * N + h + j] = acc[m][j];
  }
}

template <int MR>
void rows(const float* x, int64_t K, const float* p, const float* b, float* y, int64_t N) {
  constexpr int W = MR <= 4 ? 64 : 32;
  for (int64_t t = 0; t < N / 64; ++t) tile_rows<MR, W>(x, K, p + t * K * 64, b + t * 64, y + t * 64, N);
}

using RowsFn = void (*)(const float*, int64_t, const float*, const float*, float*, int64_t);
constexpr RowsFn kRows[9] = {nullptr, rows<1>, rows<2>, rows<3>, rows<4>, rows<5>, rows<6>, rows<7>, rows<8>};

}  // namespace

// w (R, K, N) -> (R, N/64, K, 64)
torch::Tensor pack(torch::Tensor w) {
  TORCH_CHECK(w.dim() == 3 && w.size(2) % 64 == 0 && w.scalar_type() == torch::kFloat, "w: (R, K, N) float32, N % 64 == 0");
  return w.view({w.size(0), w.size(1), w.size(2) / 64, 64}).permute({0, 2, 1, 3}).contiguous();
}

// b (R, 1, N), x (R, M, K), p = pack(w) -> (R, M, N), as torch.baddbmm(b, x, w)
torch::Tensor baddbmm_stream(torch::Tensor b, torch::Tensor x, torch::Tensor p) {
  x = x.contiguous();
  b = b.contiguous();
  const int64_t R = x.size(0), M = x.size(1), K = x.size(2), N = p.size(1) * 64;
  TORCH_CHECK(p.size(0) == R && p.size(2) == K && b.numel() == R * N, "shapes disagree");
  auto y = torch::empty({R, M, N}, x.options());
  for (int64_t r = 0; r < R; ++r) {
    const float* xr = x.data_ptr<float>() + r * M * K;
    const float* pr = p.data_ptr<float>() + r * K * N;
    const float* br = b.data_ptr<float>() + r * N;
    float* yr = y.data_ptr<float>() + r * M * N;
    for (int64_t m = 0; m < M; m += 8) {  // up to 8 rows per pass over the weights
      const int64_t mr = std::min<int64_t>(8, M - m);
      kRows[mr](xr + m * K, K, pr, br, yr + m * N, N);
    }
  }
  return y;
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("pack", &pack);
  m.def("baddbmm_stream", &baddbmm_stream);
}
