// engine/cpu/gemm.cpp: a packed, cache-blocked, register-blocked matrix product (see gemm.h).
//
// Shapes: op(A) M x K, op(B) K x N, C M x N, all row-major. Reference: BLAS sgemm/dgemm semantics;
// the blocking is the GotoBLAS / BLIS scheme (Goto & van de Geijn, "Anatomy of high-performance
// matrix multiplication", 2008).
//
// Why it is shaped like this. A triple loop does 2 flops per element it loads, so it runs at the
// speed of memory. Here every element loaded into a register is used many times:
//   - the micro-kernel keeps an MR x NR block of C in registers and, for each k, loads MR values
//     of A and NR values of B to do MR * NR fused multiply-adds;
//   - A and B are first copied ("packed") into the exact order the micro-kernel reads them, so its
//     loads are contiguous, and transposes cost nothing beyond the packing itself;
//   - loops are blocked so the packed pieces stay in cache while they are reused.
// The loops, outermost first:
//   jc  columns of C in panels of kNc            the packed B panel (kKc x kNc) lives in L3
//   pc  the depth K in slices of kKc             each slice adds its part to C
//         pack B[pc slice, jc panel] into micro-panels of NR columns   (threads split panels)
//         pack A[all rows, pc slice] into micro-panels of MR rows       (threads split panels)
//   task  blocks of mc rows x kNt columns of C   (threads split tasks: output blocks only)
//         (the task's mc x kc block of packed A stays in L2 while it is used)
//         jr  each NR-column micro-panel of B    (lives in L1 while the ir loop runs)
//         ir  each MR-row micro-panel of A       -> micro-kernel on one MR x NR block of C
// K is never split between threads, and each C element is summed over k in the same order
// whatever the thread count, so results are bitwise reproducible.
//
// The micro-kernel is plain C++ that GCC/Clang vectorize. It is compiled three times, for
// AVX-512, AVX2+FMA and the baseline ISA, with register blocks sized for each, and the best one
// this CPU supports is picked at run time, so a default x86-64 build still runs AVX-512 code.
#include "engine/cpu/gemm.h"

#include <algorithm>
#include <map>
#include <vector>

#include "engine/cpu/isa.h"
#include "engine/error.h"
#include "engine/parallel.h"

namespace retort::cpu {

namespace {

constexpr std::int64_t kKc = 256;   // depth of a packed slice: an NR micro-panel of B fits L1
constexpr std::int64_t kMc = 144;   // rows of a task: the packed A block (kMc x kKc) fits L2
constexpr std::int64_t kNt = 256;   // columns of a task: enough tasks to feed the threads
constexpr std::int64_t kNc = 4096;  // columns of a packed B panel: it fits L3
// Starting threads costs microseconds: a chunk of parallel work should be worth more than that.
constexpr std::int64_t kFlopsPerChunk = std::int64_t(1) << 21;
constexpr std::int64_t kPackedPerChunk = std::int64_t(1) << 16;

// One MR x NR block of C: C = alpha * (A panel x B panel) + beta * C, where the A panel holds
// kc steps of MR values and the B panel kc steps of NR values. Only the top-left rows x cols of
// the block exist in C (the packing zero-filled the rest of the panels).
template <class T>
using TileFn = void (*)(std::int64_t kc, const T* a, const T* b, T* c, std::int64_t ldc,
                        std::int64_t rows, std::int64_t cols, T alpha, T beta);

template <class T>
struct MicroKernel {
    std::int64_t mr, nr;
    TileFn<T> run;
};

template <class T, int MR, int NR>
[[gnu::always_inline]] inline void tile_body(std::int64_t kc, const T* __restrict a,
                                             const T* __restrict b, T* __restrict c,
                                             std::int64_t ldc, std::int64_t rows,
                                             std::int64_t cols, T alpha, T beta) {
    // The accumulators: with MR and NR fixed the compiler keeps them all in vector registers.
    // `omp simd` makes the j loop the one that becomes vectors: left to itself GCC sometimes
    // vectorizes the k loop instead, which needs shuffles and runs several times slower. (It
    // needs -fopenmp or -fopenmp-simd; without either the code is still right, only slower.)
    T acc[MR][NR] = {};
    for (std::int64_t k = 0; k < kc; ++k, a += MR, b += NR)
        for (int i = 0; i < MR; ++i)
#if defined(_OPENMP) || defined(RETORT_OPENMP_SIMD)
#pragma omp simd
#endif
            for (int j = 0; j < NR; ++j) acc[i][j] += a[i] * b[j];

    // beta == 0 must not read C: it may hold garbage (even NaN, and 0 * NaN is NaN).
    if (rows == MR && cols == NR) {  // constant bounds: a vectorized store
        for (int i = 0; i < MR; ++i) {
            T* row = c + i * ldc;
            if (beta == T(0))
                for (int j = 0; j < NR; ++j) row[j] = alpha * acc[i][j];
            else
                for (int j = 0; j < NR; ++j) row[j] = alpha * acc[i][j] + beta * row[j];
        }
        return;
    }
    for (std::int64_t i = 0; i < rows; ++i) {
        T* row = c + i * ldc;
        for (std::int64_t j = 0; j < cols; ++j)
            row[j] = beta == T(0) ? alpha * acc[i][j] : alpha * acc[i][j] + beta * row[j];
    }
}

// One instantiation per ISA. The register block fills the register file: e.g. with AVX-512,
// 12 rows x 32 floats = 24 zmm accumulators, plus 2 for B and 1 for a broadcast A value.
template <class T, int MR, int NR>
void tile_portable(std::int64_t kc, const T* a, const T* b, T* c, std::int64_t ldc,
                   std::int64_t rows, std::int64_t cols, T alpha, T beta) {
    tile_body<T, MR, NR>(kc, a, b, c, ldc, rows, cols, alpha, beta);
}

#if defined(__x86_64__) || defined(__i386__)
template <class T, int MR, int NR>
__attribute__((target("avx2,fma"))) void tile_avx2(std::int64_t kc, const T* a, const T* b, T* c,
                                                   std::int64_t ldc, std::int64_t rows,
                                                   std::int64_t cols, T alpha, T beta) {
    tile_body<T, MR, NR>(kc, a, b, c, ldc, rows, cols, alpha, beta);
}

template <class T, int MR, int NR>
__attribute__((target("avx512f"))) void tile_avx512(std::int64_t kc, const T* a, const T* b, T* c,
                                                    std::int64_t ldc, std::int64_t rows,
                                                    std::int64_t cols, T alpha, T beta) {
    tile_body<T, MR, NR>(kc, a, b, c, ldc, rows, cols, alpha, beta);
}
#endif

// The instruction sets a micro-kernel exists for, fastest first.
// The micro-kernel in use: the fastest this CPU supports, unless set_gemm_kernel() chose another.
IsaChoice& active_isa() {
    static IsaChoice choice("set_gemm_kernel");
    return choice;
}

// Register blocks per ISA: NR is two vectors wide, MR as many rows as the registers allow.
template <class T>
MicroKernel<T> kernel_for(Isa isa) {
    constexpr int lanes512 = 64 / sizeof(T), lanes256 = 32 / sizeof(T), lanes128 = 16 / sizeof(T);
#if defined(__x86_64__) || defined(__i386__)
    if (isa == Isa::avx512) return {12, 2 * lanes512, tile_avx512<T, 12, 2 * lanes512>};
    if (isa == Isa::avx2) return {6, 2 * lanes256, tile_avx2<T, 6, 2 * lanes256>};
#endif
    return {4, 2 * lanes128, tile_portable<T, 4, 2 * lanes128>};
}

// The transposing packs (op(A) = A, op(B) = B^T) read kTransposeBlock consecutive values of each
// source row (one cache line of floats) before moving to the next row. Reading all rows one
// value at a time was much slower: rows whose stride is a multiple of 4 KiB all fall into the
// same L1 cache set, so each line was evicted before its next value was read, and the packing
// of the weight gradient's operand took longer than its arithmetic.
constexpr std::int64_t kTransposeBlock = 16;
constexpr std::int64_t kMaxPanelWidth = 64;  // MR and NR of every micro-kernel are at most this

// out[k * width + c] = src[c * ld + k] for c < count and k < kc, and 0 for count <= c < width:
// `count` source rows become the columns of a k-major panel. A block of kTransposeBlock values
// of every row goes through a small buffer, so the source is read a cache line at a time and
// the panel is written in order.
template <class T>
void transpose_rows(const T* src, std::int64_t ld, std::int64_t count, std::int64_t kc, T* out,
                    std::int64_t width) {
    T block[kTransposeBlock][kMaxPanelWidth];
    for (std::int64_t kb = 0; kb < kc; kb += kTransposeBlock) {
        const std::int64_t kn = std::min(kTransposeBlock, kc - kb);
        for (std::int64_t c = 0; c < count; ++c) {
            const T* row = src + c * ld + kb;
            for (std::int64_t k = 0; k < kn; ++k) block[k][c] = row[k];
        }
        for (std::int64_t k = 0; k < kn; ++k) {
            T* dst = out + (kb + k) * width;
            for (std::int64_t c = 0; c < count; ++c) dst[c] = block[k][c];
            for (std::int64_t c = count; c < width; ++c) dst[c] = T(0);
        }
    }
}

// Packs rows [i0, i0 + rows) and depth [k0, k0 + kc) of op(A) into micro-panels of mr rows:
// panel p holds element (i0 + p * mr + r, k0 + k) at out[p * mr * kc + k * mr + r].
// Rows past the end are zero, so the micro-kernel never needs a bounds check.
template <class T>
void pack_a(const T* A, std::int64_t lda, bool trans, std::int64_t i0, std::int64_t rows,
            std::int64_t k0, std::int64_t kc, std::int64_t mr, T* out) {
    for (std::int64_t p = 0; p * mr < rows; ++p, out += mr * kc) {
        const std::int64_t first = i0 + p * mr, valid = std::min(mr, rows - p * mr);
        if (!trans) {  // row i of op(A) is contiguous: a transpose (zero-fills missing rows)
            transpose_rows(A + first * lda + k0, lda, valid, kc, out, mr);
            continue;
        }
        for (std::int64_t k = 0; k < kc; ++k) {  // column k of op(A) is contiguous
            const T* src = A + (k0 + k) * lda + first;
            for (std::int64_t r = 0; r < valid; ++r) out[k * mr + r] = src[r];
            for (std::int64_t r = valid; r < mr; ++r) out[k * mr + r] = T(0);
        }
    }
}

// Packs micro-panel q (nr columns starting at j0 + q * nr, depth [k0, k0 + kc)) of op(B):
// element (k0 + k, j0 + q * nr + c) goes to out[k * nr + c]; columns past `cols` are zero.
template <class T>
void pack_b_panel(const T* B, std::int64_t ldb, bool trans, std::int64_t k0, std::int64_t kc,
                  std::int64_t first, std::int64_t valid, std::int64_t nr, T* out) {
    if (!trans) {  // row k of op(B) is contiguous
        for (std::int64_t k = 0; k < kc; ++k) {
            const T* src = B + (k0 + k) * ldb + first;
            T* dst = out + k * nr;
            for (std::int64_t c = 0; c < valid; ++c) dst[c] = src[c];
            for (std::int64_t c = valid; c < nr; ++c) dst[c] = T(0);
        }
    } else {       // column j of op(B) is row j of B: a transpose
        transpose_rows(B + first * ldb + k0, ldb, valid, kc, out, nr);
    }
}

// Scratch buffers that live as long as their thread, so repeated products allocate nothing.
template <class T>
T* scratch(std::vector<T>& buffer, std::int64_t size) {
    if (static_cast<std::int64_t>(buffer.size()) < size) buffer.resize(size);
    return buffer.data();
}

// C = beta * C (beta == 0 writes zeros without reading C). For K == 0 or alpha == 0.
template <class T>
void scale_c(std::int64_t M, std::int64_t N, T beta, T* C, std::int64_t ldc) {
    parallel_for(0, M, grain_for(N), [&](std::int64_t b, std::int64_t e) {
        for (std::int64_t i = b; i < e; ++i) {
            T* row = C + i * ldc;
            for (std::int64_t j = 0; j < N; ++j) row[j] = beta == T(0) ? T(0) : beta * row[j];
        }
    });
}

template <class T>
void gemm_impl(bool trans_a, bool trans_b, std::int64_t M, std::int64_t N, std::int64_t K,
               T alpha, const T* A, std::int64_t lda, const T* B, std::int64_t ldb, T beta, T* C,
               std::int64_t ldc) {
    if (M <= 0 || N <= 0) return;
    if (K <= 0 || alpha == T(0)) {
        scale_c(M, N, beta, C, ldc);
        return;
    }
    const MicroKernel<T> uk = kernel_for<T>(active_isa().get());
    const std::int64_t mr = uk.mr, nr = uk.nr;
    // Row blocks of (nearly) equal height, at most kMc and a multiple of mr: with blocks of kMc
    // and a short last one, the thread that drew the short blocks would wait for the other.
    // (Only the speed depends on this cut: K is never split, so every C element is summed in
    // the same order whatever the blocks.)
    const std::int64_t row_blocks = (M + kMc - 1) / kMc;
    const std::int64_t mc = ((M + row_blocks - 1) / row_blocks + mr - 1) / mr * mr;
    thread_local std::vector<T> a_buffer, b_buffer;

    for (std::int64_t jc = 0; jc < N; jc += kNc) {
        const std::int64_t nc = std::min(kNc, N - jc);
        const std::int64_t b_panels = (nc + nr - 1) / nr;
        for (std::int64_t pc = 0; pc < K; pc += kKc) {
            const std::int64_t kc = std::min(kKc, K - pc);
            // The first slice applies the caller's beta; later slices add to what is there.
            const T slice_beta = pc == 0 ? beta : T(1);

            T* packed_b = scratch(b_buffer, b_panels * nr * kc);
            const std::int64_t pack_grain = grain_for(kc * nr, kPackedPerChunk);
            parallel_for(0, b_panels, pack_grain, [&](std::int64_t b, std::int64_t e) {
                for (std::int64_t q = b; q < e; ++q)
                    pack_b_panel(B, ldb, trans_b, pc, kc, jc + q * nr, std::min(nr, nc - q * nr),
                                 nr, packed_b + q * nr * kc);
            });

            // A's slice is packed once, whole, before the tasks: each row block is read by
            // every column task, and packing it per task would repeat the copy for each.
            const std::int64_t a_panels = (M + mr - 1) / mr;
            T* packed_a = scratch(a_buffer, a_panels * mr * kc);
            parallel_for(0, a_panels, grain_for(kc * mr, kPackedPerChunk),
                         [&](std::int64_t b, std::int64_t e) {
                for (std::int64_t p = b; p < e; ++p)
                    pack_a(A, lda, trans_a, p * mr, std::min(mr, M - p * mr), pc, kc, mr,
                           packed_a + p * mr * kc);
            });

            const std::int64_t row_tasks = (M + mc - 1) / mc;
            // Column blocks of equal width too (a multiple of nr, at most kNt).
            const std::int64_t col_tasks = (nc + kNt - 1) / kNt;
            const std::int64_t nt = ((nc + col_tasks - 1) / col_tasks + nr - 1) / nr * nr;
            const std::int64_t task_flops = 2 * std::min(mc, M) * std::min(nt, nc) * kc;
            parallel_for(0, row_tasks * col_tasks, grain_for(task_flops, kFlopsPerChunk),
                         [&](std::int64_t tb, std::int64_t te) {
                for (std::int64_t t = tb; t < te; ++t) {
                    const std::int64_t i0 = (t / col_tasks) * mc, rows = std::min(mc, M - i0);
                    const std::int64_t j0 = (t % col_tasks) * nt;
                    const std::int64_t cols = std::min(nt, nc - j0);
                    if (cols <= 0 || rows <= 0) continue;
                    for (std::int64_t jr = 0; jr < cols; jr += nr) {
                        const T* b_panel = packed_b + (j0 + jr) / nr * nr * kc;
                        for (std::int64_t ir = 0; ir < rows; ir += mr)
                            uk.run(kc, packed_a + (i0 + ir) * kc, b_panel,
                                   C + (i0 + ir) * ldc + jc + j0 + jr, ldc,
                                   std::min(mr, rows - ir), std::min(nr, cols - jr), alpha,
                                   slice_beta);
                    }
                }
            });
        }
    }
}

template <class T>
void gemm_batched_impl(const GemmBatch<T>& g) {
    if (g.count <= 0) return;
    // Items that write the same C form a group, summed in item order by one thread.
    std::map<std::int64_t, std::vector<std::int64_t>> by_target;
    std::vector<std::int64_t> order;  // group keys in order of first appearance
    for (std::int64_t i = 0; i < g.count; ++i) {
        auto [it, added] = by_target.try_emplace(g.c_offset[i]);
        if (added) order.push_back(g.c_offset[i]);
        it->second.push_back(i);
    }
    auto run_group = [&](std::int64_t target) {
        const std::vector<std::int64_t>& items = by_target.at(target);
        for (std::size_t n = 0; n < items.size(); ++n) {
            const std::int64_t i = items[n];
            gemm_impl(g.trans_a, g.trans_b, g.M, g.N, g.K, g.alpha, g.A + g.a_offset[i], g.lda,
                      g.B + g.b_offset[i], g.ldb, n == 0 ? g.beta : T(1), g.C + target, g.ldc);
        }
    };
    // Many small products: one per thread. Few large ones: each product uses every thread.
    // (The results are the same bits either way; this only decides the speed.)
    const std::int64_t groups = static_cast<std::int64_t>(order.size());
    const std::int64_t flops = 2 * g.M * g.N * g.K;
    const bool small = flops < 128 * 128 * 128;
    if (groups > 1 && (small || groups >= num_threads())) {
        const std::int64_t grain = grain_for(flops, kFlopsPerChunk);
        parallel_for(0, groups, grain, [&](std::int64_t b, std::int64_t e) {
            for (std::int64_t k = b; k < e; ++k) run_group(order[k]);
        });
    } else {
        for (std::int64_t target : order) run_group(target);
    }
}

}  // namespace

void gemm(bool trans_a, bool trans_b, std::int64_t M, std::int64_t N, std::int64_t K, float alpha,
          const float* A, std::int64_t lda, const float* B, std::int64_t ldb, float beta, float* C,
          std::int64_t ldc) {
    gemm_impl(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void gemm(bool trans_a, bool trans_b, std::int64_t M, std::int64_t N, std::int64_t K, double alpha,
          const double* A, std::int64_t lda, const double* B, std::int64_t ldb, double beta,
          double* C, std::int64_t ldc) {
    gemm_impl(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void gemm_batched(const GemmBatch<float>& batch) { gemm_batched_impl(batch); }
void gemm_batched(const GemmBatch<double>& batch) { gemm_batched_impl(batch); }

std::vector<std::string> gemm_kernels() { return IsaChoice::names(); }

const char* gemm_kernel_name() { return active_isa().name(); }

void set_gemm_kernel(const std::string& name) { active_isa().set(name); }

}  // namespace retort::cpu
