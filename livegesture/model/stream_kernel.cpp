// A streaming product of a few rows by weights no cache holds: y = b + x @ W per group.
//
// Why (docs/design.md section 6, "Compiled step"): at batch 1 the step's library GEMMs read their
// cold weights at a third of the memory bandwidth. This kernel reads each (in, out) weight stored as
// out/64 tiles of (in x 64) floats, contiguous, so one product is one sequential read that the
// hardware prefetcher follows; 4 rows at a time keep their accumulators in registers. k ascends for every
// output whatever the row count or the thread count, so every row's result is independent of its
// company and of the threads by construction.
//
// Registered as the operator livegesture::stream_mm so that the compiled one-row step
// (livegesture/engine/compiled.py) calls it from its generated program; built on first use by
// livegesture/model/stream_kernel.py with the machine's C++ compiler (the one torch.compile needs).
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

namespace {

// MR (<= 4) rows by one tile's (K x 64) weights: 4 x 64 accumulators fit the vector registers and
// every k reads one tile row of 256 contiguous bytes. No software prefetch: the hardware prefetcher
// follows the sequential tile better (measured 1.5x over prefetching one line of every row ahead).
template <int MR>
void tile(const float* x, int64_t K, const float* p, const float* b, float* y, int64_t N) {
  float acc[MR][64];
  for (int m = 0; m < MR; ++m)
    for (int j = 0; j < 64; ++j) acc[m][j] = b[j];
  for (int64_t k = 0; k < K; ++k) {
    for (int m = 0; m < MR; ++m) {
      const float a = x[m * K + k];
#pragma omp simd
      for (int j = 0; j < 64; ++j) acc[m][j] += a * p[k * 64 + j];
    }
  }
  for (int m = 0; m < MR; ++m)
    for (int j = 0; j < 64; ++j) y[m * N + j] = acc[m][j];
}

using TileFn = void (*)(const float*, int64_t, const float*, const float*, float*, int64_t);
constexpr TileFn kTile[5] = {nullptr, tile<1>, tile<2>, tile<3>, tile<4>};

// b (G, 1, N) or (G, N), x (G, M, K), p (G, N/64, K, 64) = the packed w (G, K, N) -> (G, M, N),
// as torch.baddbmm(b, x, w)
at::Tensor stream_mm(const at::Tensor& b_in, const at::Tensor& x_in, const at::Tensor& p_in) {
  TORCH_CHECK(x_in.dim() == 3 && p_in.dim() == 4 && p_in.size(3) == 64, "stream_mm: x (G, M, K), p (G, N/64, K, 64)");
  TORCH_CHECK(x_in.scalar_type() == at::kFloat && p_in.scalar_type() == at::kFloat && b_in.scalar_type() == at::kFloat,
              "stream_mm: float32 only");
  const at::Tensor x = x_in.contiguous(), p = p_in.contiguous(), b = b_in.contiguous();
  const int64_t G = x.size(0), M = x.size(1), K = x.size(2), T = p.size(1), N = T * 64;
  TORCH_CHECK(p.size(0) == G && p.size(2) == K && b.numel() == G * N, "stream_mm: shapes disagree");
  at::Tensor y = at::empty({G, M, N}, x.options());
  const float* xd = x.data_ptr<float>();
  const float* pd = p.data_ptr<float>();
  const float* bd = b.data_ptr<float>();
  float* yd = y.data_ptr<float>();
  // one task per (group, tile): each reads its tile from memory once for all rows (4 at a time)
  at::parallel_for(0, G * T, 1, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const int64_t g = i / T, t = i % T;
      for (int64_t m = 0; m < M; m += 4) {  // rows past 4 re-read the tile from the cache
        const int64_t mr = std::min<int64_t>(4, M - m);
        kTile[mr](xd + (g * M + m) * K, K, pd + (g * T + t) * K * 64, bd + g * N + t * 64,
                  yd + (g * M + m) * N + t * 64, N);
      }
    }
  });
  return y;
}

// Attention of a few queries over a ring of keys: out = softmax(q k^T / sqrt(D), where mask) v for
// q (B, H, Tq, D), k and v (B, H, C, D), mask (B, 1 or H, Tq, C) bool (true = seen; every query
// sees at least one key, as the callers guarantee). Why: at batch 1 the library's flash attention
// costs several times the read of its ring (per-call tiling and scratch set-up); here each (row,
// head) reads its keys and values once, in order, and keys a query does not see are not read.
// Each (row, head) is computed alone, so its result is independent of its company and the threads.
at::Tensor ring_attn(const at::Tensor& q_in, const at::Tensor& k_in, const at::Tensor& v_in, const at::Tensor& m_in) {
  TORCH_CHECK(q_in.dim() == 4 && k_in.dim() == 4 && v_in.dim() == 4 && m_in.dim() == 4,
              "ring_attn: q, k, v (B, H, T, D), mask (B, 1|H, Tq, C)");
  TORCH_CHECK(q_in.scalar_type() == at::kFloat && k_in.scalar_type() == at::kFloat && v_in.scalar_type() == at::kFloat &&
              m_in.scalar_type() == at::kBool, "ring_attn: float32 q, k, v and a bool mask");
  const at::Tensor q = q_in.contiguous(), k = k_in.contiguous(), v = v_in.contiguous(), mk = m_in.contiguous();
  const int64_t B = q.size(0), H = q.size(1), Tq = q.size(2), D = q.size(3), C = k.size(2), MH = mk.size(1);
  TORCH_CHECK(k.size(0) == B && k.size(1) == H && k.size(3) == D && v.sizes() == k.sizes() && mk.size(0) == B &&
              (MH == 1 || MH == H) && mk.size(2) == Tq && mk.size(3) == C, "ring_attn: shapes disagree");
  at::Tensor y = at::empty_like(q);
  const float* qd = q.data_ptr<float>();
  const float* kd = k.data_ptr<float>();
  const float* vd = v.data_ptr<float>();
  const bool* md = mk.data_ptr<bool>();
  float* yd = y.data_ptr<float>();
  const float scale = 1.0f / std::sqrt(static_cast<float>(D));
  at::parallel_for(0, B * H, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> s(C), acc(D);
    for (int64_t bh = begin; bh < end; ++bh) {
      const int64_t b = bh / H, h = bh % H;
      const float* kk = kd + bh * C * D;
      const float* vv = vd + bh * C * D;
      for (int64_t t = 0; t < Tq; ++t) {
        const float* qq = qd + (bh * Tq + t) * D;
        const bool* m = md + ((b * MH + (MH == 1 ? 0 : h)) * Tq + t) * C;
        float mx = -std::numeric_limits<float>::infinity();
        for (int64_t j = 0; j < C; ++j) {
          if (!m[j]) continue;
          const float* kj = kk + j * D;
          float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
          for (int64_t d = 0; d < D; ++d) dot += qq[d] * kj[d];
          s[j] = dot * scale;
          mx = std::max(mx, s[j]);
        }
        std::fill(acc.begin(), acc.end(), 0.0f);
        float den = 0.0f;
        for (int64_t j = 0; j < C; ++j) {
          if (!m[j]) continue;
          const float p = std::exp(s[j] - mx);
          den += p;
          const float* vj = vv + j * D;
#pragma omp simd
          for (int64_t d = 0; d < D; ++d) acc[d] += p * vj[d];
        }
        float* out = yd + (bh * Tq + t) * D;
        const float inv = 1.0f / den;
        for (int64_t d = 0; d < D; ++d) out[d] = acc[d] * inv;
      }
    }
  });
  return y;
}

}  // namespace

TORCH_LIBRARY(livegesture, m) {
  m.def("stream_mm(Tensor b, Tensor x, Tensor p) -> Tensor");
  m.def("ring_attn(Tensor q, Tensor k, Tensor v, Tensor mask) -> Tensor");
}

TORCH_LIBRARY_IMPL(livegesture, CPU, m) {
  m.impl("stream_mm", &stream_mm);
  m.impl("ring_attn", &ring_attn);
}
