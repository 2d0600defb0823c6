/* teacher_store_shuffle.c: which examples a data-parallel rank reads in an
 * epoch (io layer, pure arithmetic: no MPI, no HDF5).
 *
 * One global permutation per (seed, epoch), then contiguous shards of it
 * (layout_shard). The permutation never looks at the rank count, so a job
 * restarted on another number of ranks visits the examples of an epoch in
 * the same global order. Randomness comes from the counter-based generator
 * in core/rng: draw i of epoch e is a pure function of (seed, stream(e), i). */
#include "kd/io/teacher_store.h"
#include "kd/core/rng.h"
#include "kd/parallel/layout.h"

/* Stream of epoch e: a tag ("SHUF") in the high word keeps these draws
 * apart from the dropout and initialisation streams. */
#define SHUFFLE_STREAM(epoch) ((0x53485546ull << 32) ^ (uint64_t)(epoch))

void store_epoch_order(int64_t *idx, int64_t n, uint64_t seed, int64_t epoch)
{
    for (int64_t i = 0; i < n; i++)
        idx[i] = i;
    /* Fisher-Yates from the top: position i swaps with j uniform in
     * [0, i]. Two 32-bit draws (elements 2i, 2i+1) make a 64-bit number;
     * the modulo bias is below 2^-30 for any n < 2^34. */
    enum { BLOCK = 1024 };
    uint32_t bits[2 * BLOCK];
    for (int64_t hi = n - 1; hi >= 1;) {
        int64_t lo = hi - BLOCK + 1 > 1 ? hi - BLOCK + 1 : 1;
        rng_bits(bits, seed, SHUFFLE_STREAM(epoch), 2 * (uint64_t)lo, 2 * (hi - lo + 1));
        for (int64_t i = hi; i >= lo; i--) {
            const uint32_t *b = bits + 2 * (i - lo);
            uint64_t r = ((uint64_t)b[0] << 32) | b[1];
            int64_t j = (int64_t)(r % (uint64_t)(i + 1));
            int64_t t = idx[i];
            idx[i] = idx[j];
            idx[j] = t;
        }
        hi = lo - 1;
    }
}

void store_epoch_shard(int64_t *idx, int64_t n, uint64_t seed, int64_t epoch, int rank,
                       int nranks, int64_t *begin, int64_t *end)
{
    long long b, e;
    store_epoch_order(idx, n, seed, epoch);
    layout_shard(n, rank, nranks, &b, &e);
    *begin = b;
    *end = e;
}
