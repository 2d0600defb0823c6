/* attention.c: multi-head self-attention core, forward and backward
 * (kernels layer). See attention.h for the layout and the contract.
 *
 * Each (b,h) pair is two gemm calls forward and four backward, all reading
 * Q, K, V (and writing dQ, dK, dV) in place inside the packed buffers via
 * leading dimensions. The softmax, dropout and softmax-backward passes run
 * row by row over a (T,T) block that stays in L2 between the products.
 *
 * Threads: the (b,h) pairs are independent (each writes its own probs
 * block, its own context columns and its own dQ/dK/dV columns), so they are
 * shared out over the team, each pair computed start to finish by one
 * thread with single-threaded BLAS and that thread's slice of the scratch.
 * A pair's arithmetic is the same whichever thread runs it. Splitting one
 * T x T x HS product over threads instead (what OpenBLAS did with its own
 * threads) is slower than one thread for products this small.
 *
 * Key extent: with right padding, keys at or after the last real token of
 * sequence b contribute exactly nothing, so both products stop at
 * Lk = last real key + 1. For GLUE-style batches padded to 128 this removes
 * most of the work. Keys before Lk that are padding are masked normally.
 */
#include "kd/kernels/attention.h"
#include "kd/core/error.h"
#include "kd/kernels/gemm.h"
#include "kd/kernels/softmax.h"
#include "kd/kernels/threads.h"
#include "kd/kernels/vecmath.h"

#include <math.h>
#include <string.h>

/* One thread's share of the scratch: dP and A (T,T) each, one mask row. */
static int64_t slot_floats(int64_t T) { return 2 * T * T + T; }

int64_t attention_scratch_floats(int64_t T) { return threads_max() * slot_floats(T); }

/* Multiply-adds of one (b,h) pair's forward products that a thread should
 * have at least (~50 us of sgemm): below that, waking the team costs more
 * than it saves. T = 128, HS = 64 gives 2^20 per pair. */
#define ATTN_GRAIN ((int64_t)1 << 18)

/* Threads for B*NH pairs of T x T x HS products: the work is counted
 * without padding, which only shortens it. */
static int attn_team(int64_t B, int64_t T, int64_t NH, int64_t HS)
{
    const int64_t pairs = B * NH;
    const int64_t per_pair = T * T * HS;
    int nt = threads_team(pairs * per_pair, ATTN_GRAIN);
    return nt > pairs ? (int)pairs : nt;
}

/* Number of leading keys that can receive probability: index of the last
 * nonzero mask entry + 1 (0 if the sequence is all padding). */
static int64_t key_extent(const int32_t *mask_b, int64_t T)
{
    if (!mask_b)
        return T;
    int64_t n = T;
    while (n > 0 && mask_b[n - 1] == 0)
        n--;
    return n;
}

/* Dropout spec for row i of head (b,h): element (b,h,i,0) of probs. */
static struct dropout_spec row_drop(struct dropout_spec d, int64_t b, int64_t h,
                                    int64_t i, int64_t T, int64_t NH)
{
    d.first += (uint64_t)(((b * NH + h) * T + i) * T);
    return d;
}

/* Forward of pair (b,h); slot: this thread's scratch (NULL if not dropping). */
static void head_forward(float *ctx, float *probs, const float *qkv, const int32_t *mask,
                         struct dropout_spec drop, float *slot, int64_t b, int64_t h,
                         int64_t T, int64_t NH, int64_t HS)
{
    const int64_t CH = NH * HS, C3 = 3 * CH; /* context and qkv row strides */
    const float scale = 1.0f / sqrtf((float)HS);
    const int32_t *mask_b = mask ? mask + b * T : NULL;
    const int64_t Lk = key_extent(mask_b, T);
    const float *q = qkv + b * T * C3 + h * HS; /* (T,HS), ld C3 */
    const float *k = q + CH;
    const float *v = q + 2 * CH;
    float *P = probs + (b * NH + h) * T * T; /* (T,T), ld T */
    float *out = ctx + b * T * CH + h * HS;  /* (T,HS), ld CH */
    if (Lk == 0) { /* no real key: zero probabilities, zero context */
        memset(P, 0, (size_t)(T * T) * sizeof(float));
        for (int64_t i = 0; i < T; i++)
            memset(out + i * CH, 0, (size_t)HS * sizeof(float));
        return;
    }
    /* S[:, :Lk] = scale * Q K[:Lk]^T, written straight into probs */
    gemm(P, T, q, C3, k, C3, GEMM_TRANS_N, GEMM_TRANS_T, T, Lk, HS, scale, 0.0f);
    for (int64_t i = 0; i < T; i++) {
        softmax_row_forward(P + i * T, mask_b, NULL, Lk);
        if (Lk < T) /* keys past the extent: exactly zero */
            memset(P + i * T + Lk, 0, (size_t)(T - Lk) * sizeof(float));
    }
    /* A = dropout(P), only materialised when dropout is on */
    const float *A = P;
    if (drop.p > 0.0f) {
        for (int64_t i = 0; i < T; i++)
            dropout_forward(slot + i * T, P + i * T, row_drop(drop, b, h, i, T, NH), Lk);
        A = slot;
    }
    /* ctx_bh = A[:, :Lk] V[:Lk] */
    gemm(out, CH, A, T, v, C3, GEMM_TRANS_N, GEMM_TRANS_N, T, HS, Lk, 1.0f, 0.0f);
}

void attention_forward(float *ctx, float *probs, const float *qkv, const int32_t *mask,
                       struct dropout_spec drop, float *scratch, int64_t B,
                       int64_t T, int64_t NH, int64_t HS)
{
    if (NH == 0 || B == 0 || T == 0)
        return; /* pruned layer or empty batch: no heads, no context columns */
    KD_ASSERT(HS > 0, "head size %lld with %lld heads", (long long)HS, (long long)NH);
    KD_ASSERT(drop.p >= 0.0f && drop.p <= 1.0f, "dropout p = %g", (double)drop.p);
    KD_ASSERT(scratch || drop.p == 0.0f, "dropout needs the scratch buffer");
    const int64_t pairs = B * NH, slot = slot_floats(T);
    const int nt = attn_team(B, T, NH, HS);
    /* single-threaded BLAS whenever the engine has a team, even if this
     * call runs on one thread (gemm.h) */
    const int saved = gemm_serial_begin(threads_now());
    /* dynamic: with padding, pairs of different sequences differ in cost */
    KD_OMP_TEAM(nt, parallel for schedule(dynamic, 1))
    for (int64_t bh = 0; bh < pairs; bh++) {
        float *mine = scratch ? scratch + threads_id() * slot : NULL;
        head_forward(ctx, probs, qkv, mask, drop, mine, bh / NH, bh % NH, T, NH, HS);
    }
    gemm_serial_end(saved);
}

/* a = p * m and d *= m over one row: the replayed dropout factors m
 * applied to the forward probabilities and to the incoming gradient. */
static void apply_mask(float *restrict a, float *restrict d, const float *restrict p,
                       const float *restrict m, int64_t n)
{
    int64_t i = 0;
    for (; i + KD_VL <= n; i += KD_VL)
        for (int k = 0; k < KD_VL; k++) {
            a[i + k] = p[i + k] * m[i + k];
            d[i + k] *= m[i + k];
        }
    for (; i < n; i++) {
        a[i] = p[i] * m[i];
        d[i] *= m[i];
    }
}

/* dS = P * (dP - <P, dP>) (+ dscores) over one row, written over dP.
 * dP already holds the gradient w.r.t. P (dropout undone, injections added). */
static void row_softmax_grad(float *restrict dp, const float *restrict p,
                             const float *restrict ds_extra, int64_t n)
{
    const float dot = kd_dot(p, dp, n);
    int64_t i = 0;
    if (ds_extra) {
        for (; i + KD_VL <= n; i += KD_VL)
            for (int k = 0; k < KD_VL; k++)
                dp[i + k] = p[i + k] * (dp[i + k] - dot) + ds_extra[i + k];
        for (; i < n; i++)
            dp[i] = p[i] * (dp[i] - dot) + ds_extra[i];
    } else {
        for (; i + KD_VL <= n; i += KD_VL)
            for (int k = 0; k < KD_VL; k++)
                dp[i + k] = p[i + k] * (dp[i + k] - dot);
        for (; i < n; i++)
            dp[i] = p[i] * (dp[i] - dot);
    }
}

/* Backward of pair (b,h), accumulating into its dQ, dK, dV columns; slot:
 * this thread's scratch (slot_floats(T)). Lk as in attention_backward. */
static void head_backward(float *dqkv, const float *dctx, const float *dprobs,
                          const float *dscores, const float *probs, const float *qkv,
                          struct dropout_spec drop, float *slot, int64_t b, int64_t h,
                          int64_t Lk, int64_t T, int64_t NH, int64_t HS)
{
    const int64_t CH = NH * HS, C3 = 3 * CH;
    const float scale = 1.0f / sqrtf((float)HS);
    float *dP = slot;                 /* (T,T): dA, then dP, then dS */
    float *A = slot + T * T;          /* (T,T): dropout(P), replayed */
    float *mrow = slot + 2 * T * T;   /* (T): one row's dropout factors */
    const int64_t off = b * T * C3 + h * HS;
    const float *q = qkv + off, *k = q + CH, *v = q + 2 * CH;
    float *dq = dqkv + off, *dk = dq + CH, *dv = dq + 2 * CH;
    const float *P = probs + (b * NH + h) * T * T;
    const float *dout = dctx + b * T * CH + h * HS; /* (T,HS), ld CH */
    /* dA[:, :Lk] = dctx_bh V[:Lk]^T */
    gemm(dP, T, dout, CH, v, C3, GEMM_TRANS_N, GEMM_TRANS_T, T, Lk, HS, 1.0f, 0.0f);
    /* replay the mask once per row for both uses:
     * A = P * m and dP = dA * m, m = keep / (1 - p) */
    const float *Aw = P;
    if (drop.p > 0.0f) {
        for (int64_t i = 0; i < T; i++) {
            dropout_mask(mrow, row_drop(drop, b, h, i, T, NH), Lk);
            apply_mask(A + i * T, dP + i * T, P + i * T, mrow, Lk);
        }
        Aw = A;
    }
    /* dV[:Lk] += A[:, :Lk]^T dctx_bh */
    gemm(dv, C3, Aw, T, dout, CH, GEMM_TRANS_T, GEMM_TRANS_N, Lk, HS, T, 1.0f, 1.0f);
    /* dS = softmax'(dP + dprobs) + dscores, row by row in place */
    for (int64_t i = 0; i < T; i++) {
        const int64_t r = ((b * NH + h) * T + i) * T;
        if (dprobs)
            kd_add_inplace(dP + i * T, dprobs + r, Lk);
        row_softmax_grad(dP + i * T, P + i * T, dscores ? dscores + r : NULL, Lk);
    }
    /* dQ += scale * dS[:, :Lk] K[:Lk];  dK[:Lk] += scale * dS^T Q */
    gemm(dq, C3, dP, T, k, C3, GEMM_TRANS_N, GEMM_TRANS_N, T, HS, Lk, scale, 1.0f);
    gemm(dk, C3, dP, T, q, C3, GEMM_TRANS_T, GEMM_TRANS_N, Lk, HS, T, scale, 1.0f);
}

void attention_backward(float *dqkv, const float *dctx, const float *dprobs,
                        const float *dscores, const float *probs, const float *qkv,
                        const int32_t *mask, struct dropout_spec drop,
                        float *scratch, int64_t B, int64_t T, int64_t NH,
                        int64_t HS)
{
    if (NH == 0 || B == 0 || T == 0)
        return;
    KD_ASSERT(HS > 0, "head size %lld with %lld heads", (long long)HS, (long long)NH);
    KD_ASSERT(drop.p >= 0.0f && drop.p <= 1.0f, "dropout p = %g", (double)drop.p);
    const int64_t pairs = B * NH, slot = slot_floats(T);
    const int nt = attn_team(B, T, NH, HS);
    /* single-threaded BLAS whenever the engine has a team, even if this
     * call runs on one thread (gemm.h) */
    const int saved = gemm_serial_begin(threads_now());
    KD_OMP_TEAM(nt, parallel for schedule(dynamic, 1))
    for (int64_t bh = 0; bh < pairs; bh++) {
        const int64_t b = bh / NH;
        /* an injected score gradient may be nonzero on every key, so the
         * extent shortcut only applies without it */
        const int64_t Lk = dscores ? T : key_extent(mask ? mask + b * T : NULL, T);
        if (Lk == 0)
            continue; /* all padding: the forward was constant zero */
        head_backward(dqkv, dctx, dprobs, dscores, probs, qkv, drop,
                      scratch + threads_id() * slot, b, bh % NH, Lk, T, NH, HS);
    }
    gemm_serial_end(saved);
}
