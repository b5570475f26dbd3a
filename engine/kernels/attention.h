// engine/kernels/attention.h: fused attention, out = softmax(scale * q k^T) v, without the
// (Nq x Nk) matrix of probabilities ever existing in memory.
//
// Layout: q (BH, Nq, D), k and v (BH, Nk, D), out (BH, Nq, D), all contiguous; BH counts batch x
// heads. One call handles one row:
//
//   AttentionForwardRow (row = one query i of one head): an online softmax over the keys
//   (Milakov and Gimelshein 2018; the loop of FlashAttention): a running maximum m, running sum
//   l and running output o; a larger score rescales what was summed so far by exp(m_old - m_new).
//   At the end o /= l, and lse_i = m + log(l) is saved for the backward pass.
//
//   The backward pass recomputes each probability from the saved lse, P_ij = exp(s_ij - lse_i):
//     delta_i = dO_i . O_i
//     dS_ij   = P_ij (dO_i . V_j - delta_i)
//     dQ_i    = scale sum_j dS_ij K_j       (AttentionBackwardQueryRow, which also writes delta)
//     dK_j    = scale sum_i dS_ij Q_i,  dV_j = sum_i P_ij dO_i   (AttentionBackwardKeyRow, after)
//   Each row is written by one call only, so there are no atomics and the result does not
//   depend on the launch: the same bits on any number of threads.
//
// One thread per row keeps the code short and checkable on the CPU; it reads each key (or query)
// row once per output row, O(N^2 D) work like the GEMM path, with O(N) memory instead of O(N^2).
#pragma once

#include <cmath>
#include <cstdint>

#include "engine/math/hd.h"

namespace retort::kernels {

template <class T>
RETORT_HD T dot_row(const T* a, const T* b, std::int64_t d) {
    T s = T(0);
    for (std::int64_t c = 0; c < d; ++c) s += a[c] * b[c];
    return s;
}

template <class T>
struct AttentionForwardRow {
    const T* q;
    const T* k;
    const T* v;
    T* out;
    T* lse;  // (BH, Nq)
    std::int64_t nq, nk, d;
    T scale;
    RETORT_HD void operator()(std::int64_t row) const {
        const std::int64_t bh = row / nq;
        const T* qi = q + row * d;
        const T* keys = k + bh * nk * d;
        const T* values = v + bh * nk * d;
        T* o = out + row * d;
        for (std::int64_t c = 0; c < d; ++c) o[c] = T(0);
        T m = -INFINITY, l = T(0);
        for (std::int64_t j = 0; j < nk; ++j) {
            const T s = scale * dot_row(qi, keys + j * d, d);
            if (s > m) {  // a new maximum: what was summed so far shrinks by exp(m_old - m_new)
                const T shrink = std::exp(m - s);
                l *= shrink;
                for (std::int64_t c = 0; c < d; ++c) o[c] *= shrink;
                m = s;
            }
            const T p = std::exp(s - m);
            l += p;
            const T* vj = values + j * d;
            for (std::int64_t c = 0; c < d; ++c) o[c] += p * vj[c];
        }
        const T inverse = T(1) / l;
        for (std::int64_t c = 0; c < d; ++c) o[c] *= inverse;
        lse[row] = m + std::log(l);
    }
};

template <class T>
struct AttentionBackwardQueryRow {
    const T* q;
    const T* k;
    const T* v;
    const T* out;
    const T* dout;
    const T* lse;
    T* dq;
    T* delta;  // (BH, Nq), read by AttentionBackwardKeyRow
    std::int64_t nq, nk, d;
    T scale;
    RETORT_HD void operator()(std::int64_t row) const {
        const std::int64_t bh = row / nq;
        const T* qi = q + row * d;
        const T* doi = dout + row * d;
        const T* keys = k + bh * nk * d;
        const T* values = v + bh * nk * d;
        T* g = dq + row * d;
        const T di = dot_row(doi, out + row * d, d);
        delta[row] = di;
        for (std::int64_t c = 0; c < d; ++c) g[c] = T(0);
        for (std::int64_t j = 0; j < nk; ++j) {
            const T p = std::exp(scale * dot_row(qi, keys + j * d, d) - lse[row]);
            const T ds = p * (dot_row(doi, values + j * d, d) - di);
            const T* kj = keys + j * d;
            for (std::int64_t c = 0; c < d; ++c) g[c] += ds * kj[c];
        }
        for (std::int64_t c = 0; c < d; ++c) g[c] *= scale;
    }
};

template <class T>
struct AttentionBackwardKeyRow {
    const T* q;
    const T* k;
    const T* v;
    const T* dout;
    const T* lse;
    const T* delta;
    T* dk;
    T* dv;
    std::int64_t nq, nk, d;
    T scale;
    RETORT_HD void operator()(std::int64_t key_row) const {
        const std::int64_t bh = key_row / nk;
        const T* kj = k + key_row * d;
        const T* vj = v + key_row * d;
        const T* queries = q + bh * nq * d;
        const T* douts = dout + bh * nq * d;
        const T* lses = lse + bh * nq;
        const T* deltas = delta + bh * nq;
        T* gk = dk + key_row * d;
        T* gv = dv + key_row * d;
        for (std::int64_t c = 0; c < d; ++c) gk[c] = gv[c] = T(0);
        for (std::int64_t i = 0; i < nq; ++i) {
            const T* qi = queries + i * d;
            const T* doi = douts + i * d;
            const T p = std::exp(scale * dot_row(qi, kj, d) - lses[i]);
            const T ds = p * (dot_row(doi, vj, d) - deltas[i]);
            for (std::int64_t c = 0; c < d; ++c) {
                gv[c] += p * doi[c];
                gk[c] += ds * qi[c];
            }
        }
        for (std::int64_t c = 0; c < d; ++c) gk[c] *= scale;
    }
};

}  // namespace retort::kernels
