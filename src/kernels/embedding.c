/* embedding.c: word + position + token-type lookup and its scatter-add
 * backward (kernels layer). Each token is one vectorised pass over C.
 *
 * The backward is a scatter: several tokens of a batch may share a word
 * (or type) row, so their gradients add into the same row, in batch order,
 * which makes the sums deterministic. With threads (threads.h) the forward
 * splits the tokens; the backward splits the columns C, each thread running
 * the whole batch-order loop on its columns, so every element is summed in
 * the same order as on one thread. */
#include "kd/kernels/embedding.h"
#include "kd/core/error.h"
#include "kd/kernels/threads.h"
#include "kd/kernels/vecmath.h"

/* Elements per thread below which the work stays on one thread. */
#define EMB_GRAIN 32768

/* out = a + b + c over one row; c may be NULL (specialised at compile time) */
static inline __attribute__((always_inline)) void
row_sum3(float *restrict out, const float *restrict a, const float *restrict b,
         const float *restrict c, int64_t C, const int has_c)
{
    int64_t i = 0;
    for (; i + KD_VL <= C; i += KD_VL)
        for (int k = 0; k < KD_VL; k++)
            out[i + k] = has_c ? a[i + k] + b[i + k] + c[i + k] : a[i + k] + b[i + k];
    for (; i < C; i++)
        out[i] = has_c ? a[i] + b[i] + c[i] : a[i] + b[i];
}

/* Checked lookup of the token type (0 when type_ids is NULL, which is what
 * Hugging Face does when token_type_ids is not given). An id out of range
 * would read another tensor's memory, so it is fatal rather than silent. */
static int64_t type_at(const int32_t *type_ids, int64_t bt, int64_t TV)
{
    if (!type_ids)
        return 0;
    int64_t tt = type_ids[bt];
    KD_ASSERT(tt >= 0 && tt < TV, "token type id %lld at position %lld outside [0,%lld)",
              (long long)tt, (long long)bt, (long long)TV);
    return tt;
}

/* Checked lookup of a word id; bt is the flattened (b,t) position, which
 * the message reports so the offending example can be found. */
static int64_t id_at(const int32_t *ids, int64_t bt, int64_t V)
{
    int64_t id = ids[bt];
    KD_ASSERT(id >= 0 && id < V, "token id %lld at position %lld outside [0,%lld)",
              (long long)id, (long long)bt, (long long)V);
    return id;
}

void embedding_forward(float *out, const int32_t *ids, const int32_t *type_ids,
                       const float *wte, const float *wpe, const float *wtt,
                       int64_t B, int64_t T, int64_t C, int64_t V, int64_t TV)
{
    const int nt = threads_team(B * T * C, EMB_GRAIN);
    KD_OMP_TEAM(nt, parallel for schedule(static))
    for (int64_t bt = 0; bt < B * T; bt++) {
        const int64_t t = bt % T;
        const float *w = wte + id_at(ids, bt, V) * C; /* (C) word row */
        const float *p = wpe + t * C;                 /* (C) position t */
        if (wtt)
            row_sum3(out + bt * C, w, p, wtt + type_at(type_ids, bt, TV) * C, C, 1);
        else
            row_sum3(out + bt * C, w, p, NULL, C, 0);
    }
}

void embedding_backward(float *dwte, float *dwpe, float *dwtt, const float *dout,
                        const int32_t *ids, const int32_t *type_ids, int64_t B,
                        int64_t T, int64_t C, int64_t V, int64_t TV)
{
    const int nt = threads_team(B * T * C, EMB_GRAIN);
    KD_OMP_TEAM(nt, parallel)
    {
        int64_t j0, j1;
        threads_split(C, threads_count(), threads_id(), KD_VL, &j0, &j1);
        const int64_t n = j1 - j0; /* columns [j0, j1) of every row */
        for (int64_t b = 0; n > 0 && b < B; b++)
            for (int64_t t = 0; t < T; t++) {
                const int64_t bt = b * T + t;
                const float *g = dout + bt * C + j0; /* gradient of token (b,t) */
                if (dwte)
                    kd_add_inplace(dwte + id_at(ids, bt, V) * C + j0, g, n);
                /* position rows receive every sequence's gradient at t */
                if (dwpe)
                    kd_add_inplace(dwpe + t * C + j0, g, n);
                if (dwtt)
                    kd_add_inplace(dwtt + type_at(type_ids, bt, TV) * C + j0, g, n);
            }
    }
}
