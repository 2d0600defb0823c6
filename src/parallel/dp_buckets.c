/* dp_buckets.c: the bucket table of the data-parallel reducer, a pure
 * function of the parameter layout and the bucket size (no MPI calls, so
 * every rank computes the same table on its own). Contract and picture in
 * include/kd/parallel/dp.h. */
#include "kd/parallel/dp.h"

#include <stdlib.h>
#include <string.h>

/* Backward position at which a tensor's gradient is final (see struct
 * dp_bucket): heads first, then layers from the top, embeddings last. A
 * name this file does not know goes last, which is always safe (its bucket
 * is posted after the whole backward). */
static int64_t tensor_ready_at(const struct bert_tensor *t, int64_t L)
{
    static const char layer_prefix[] = "encoder.layer.";
    if (t->head != 0)
        return 0;
    if (strncmp(t->name, layer_prefix, sizeof layer_prefix - 1) == 0) {
        char *end = NULL;
        long l = strtol(t->name + sizeof layer_prefix - 1, &end, 10);
        if (end && *end == '.' && l >= 0 && l < L)
            return L - l;
    }
    return L + 1;
}

/* Tensors sorted by offset (the table is in block order already; sorting
 * keeps the function correct for any table). */
static int by_offset(const void *a, const void *b)
{
    const struct bert_tensor *x = *(const struct bert_tensor *const *)a;
    const struct bert_tensor *y = *(const struct bert_tensor *const *)b;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

/* Appends the range [lo, hi) of one run (tensors of one part, adjacent in
 * the block) as buckets of at most cap floats, cut from the top so the
 * first bucket posted is the first one complete; the remainder is at the
 * bottom. Returns the new bucket count. out may be NULL (counting pass). */
static size_t cut_run(struct dp_bucket *out, size_t n, size_t lo, size_t hi, size_t cap,
                      int64_t ready_at)
{
    while (hi > lo) {
        size_t count = hi - lo < cap ? hi - lo : cap;
        if (out)
            out[n] = (struct dp_bucket){hi - count, count, ready_at};
        n++;
        hi -= count;
    }
    return n;
}

/* Walks the block from the top in runs of one part and cuts each run; out
 * NULL only counts. A tensor's range extends to the next tensor's offset
 * (the padding after it), the last one's to the end of the block. The
 * tensor t[skip] (with its padding) is left out; skip < 0: none. */
static size_t walk(struct dp_bucket *out, const struct bert_tensor *const *t, int n, int skip,
                   size_t floats, size_t cap, int64_t L)
{
    size_t nb = 0, hi = floats;
    int i = n - 1;
    while (i >= 0) {
        if (i == skip) {
            hi = t[i]->offset;
            i--;
            continue;
        }
        const int64_t part = tensor_ready_at(t[i], L);
        while (i > 0 && i - 1 != skip && tensor_ready_at(t[i - 1], L) == part)
            i--;
        /* the first run at the bottom also takes any floats before it */
        size_t lo = i == 0 ? 0 : t[i]->offset;
        nb = cut_run(out, nb, lo, hi, cap, part);
        hi = lo;
        i--;
    }
    if (n == 0)
        nb = cut_run(out, nb, 0, floats, cap, L + 1);
    return nb;
}

size_t dp_buckets_build(struct dp_bucket **out, const struct bert_table *tab, int64_t L,
                        size_t cap, int skip)
{
    KD_ASSERT(cap > 0, "bucket size 0");
    KD_ASSERT(skip < tab->n, "tensor %d of %d", skip, tab->n);
    const struct bert_tensor **t = kd_malloc((size_t)(tab->n > 0 ? tab->n : 1) * sizeof *t);
    for (int i = 0; i < tab->n; i++)
        t[i] = &tab->t[i];
    qsort(t, (size_t)tab->n, sizeof *t, by_offset);
    /* the skipped tensor's position once sorted */
    int sorted_skip = -1;
    for (int i = 0; i < tab->n && skip >= 0; i++)
        if (t[i] == &tab->t[skip])
            sorted_skip = i;
    size_t nb = walk(NULL, t, tab->n, sorted_skip, tab->floats, cap, L);
    *out = kd_malloc((nb > 0 ? nb : 1) * sizeof **out);
    size_t check = walk(*out, t, tab->n, sorted_skip, tab->floats, cap, L);
    KD_ASSERT(check == nb, "bucket count changed between passes (%zu, %zu)", nb, check);
    free(t);
    return nb;
}
