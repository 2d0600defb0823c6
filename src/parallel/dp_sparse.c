/* dp_sparse.c: the row-sparse sum of the word-embedding gradient over the
 * data-parallel ranks (parallel layer). Why and what it guarantees: dp.h,
 * "Word embeddings". Here: how.
 *
 *   1. mask: bit v set when row v has any non-zero bit on this rank (+0.0
 *      is the only "zero"; -0.0 counts as touched, so untouched rows are
 *      +0.0 everywhere and their dense sum would be +0.0 too);
 *   2. MPI_Allreduce(BOR) of the mask: the union U, the same on all ranks;
 *   3. |U| > sparse_max_rows: sum the whole tensor in place (dense) and stop;
 *   4. pack: row U[k] moves to row k, k ascending (U[k] >= k, so a row is
 *      read before anything overwrites it);
 *   5. sum rows [0, |U|) in place;
 *   6. unpack: k descending, row k moves back to U[k] (the rows above are
 *      already home and lie above U[k]); rows below |U| that are not in U
 *      get +0.0 again.
 * No buffer beyond the mask: the tensor itself is the packing space. */
#include "kd/parallel/dp_internal.h"
#include "kd/parallel/comm.h"

#include <stdlib.h>
#include <string.h>

void dp_sparse_init(struct dp_reducer *r, const struct bert_tensor *t, size_t end)
{
    KD_ASSERT(t->ndim == 2 && t->numel == t->shape[0] * t->shape[1], "'%s' is not a matrix",
              t->name);
    r->sparse_offset = t->offset;
    r->sparse_end = end;
    r->sparse_rows_total = t->shape[0];
    r->sparse_cols = t->shape[1];
    r->sparse_max_rows = t->shape[0] / 2;
    r->sparse_mask = kd_calloc((size_t)(t->shape[0] + 63) / 64 + 1, sizeof *r->sparse_mask);
}

/* 1 if any of the n floats at p has a bit set (-0.0 included). */
static int row_touched(const float *p, int64_t n)
{
    const uint32_t *u = (const uint32_t *)(const void *)p;
    uint32_t any = 0;
    for (int64_t i = 0; i < n; i++)
        any |= u[i];
    return any != 0;
}

void dp_sparse_sum(struct dp_reducer *r)
{
    const int64_t V = r->sparse_rows_total, C = r->sparse_cols;
    const size_t words = (size_t)(V + 63) / 64, row_bytes = (size_t)C * sizeof(float);
    float *g = r->grads + r->sparse_offset;
    uint64_t *mask = r->sparse_mask;
    memset(mask, 0, words * sizeof *mask);
    for (int64_t v = 0; v < V; v++)
        if (row_touched(g + v * C, C))
            mask[v / 64] |= (uint64_t)1 << (v % 64);
    MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, mask, (int)words, MPI_UINT64_T, MPI_BOR, r->comm));
    int64_t n = 0;
    for (size_t w = 0; w < words; w++)
        n += __builtin_popcountll(mask[w]);
    if (n > r->sparse_max_rows) {
        dp_allreduce_floats(r, g, (size_t)(V * C));
        r->stats.dense_fallbacks++;
        return;
    }
    /* pack (ascending) */
    int64_t k = 0;
    for (int64_t v = 0; v < V; v++)
        if (mask[v / 64] >> (v % 64) & 1) {
            if (k != v)
                memcpy(g + k * C, g + v * C, row_bytes);
            k++;
        }
    dp_allreduce_floats(r, g, (size_t)(n * C));
    /* unpack (descending): k walks the packed rows back, v their homes */
    k = n - 1;
    for (int64_t v = V - 1; v >= 0 && k >= 0; v--)
        if (mask[v / 64] >> (v % 64) & 1) {
            if (k != v)
                memcpy(g + v * C, g + k * C, row_bytes);
            k--;
        }
    /* packed slots that are not home to their own row: back to +0.0 */
    for (int64_t v = 0; v < n; v++)
        if (!(mask[v / 64] >> (v % 64) & 1))
            memset(g + v * C, 0, row_bytes);
    r->stats.sparse_steps++;
    r->stats.sparse_rows += n;
}
