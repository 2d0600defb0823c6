/* dp_internal.h: what the files of the data-parallel reducer (src/parallel/
 * dp*.c) share and nobody else calls. Contracts of the public API are in
 * dp.h. */
#ifndef KD_PARALLEL_DP_INTERNAL_H
#define KD_PARALLEL_DP_INTERNAL_H

#include <limits.h>

#include "kd/parallel/dp.h"

/* Largest float count one MPI call takes (int), in whole 64-byte lines. */
#define DP_MAX_CALL_FLOATS ((size_t)INT_MAX / 16 * 16)

/* Blocking in-place sum of n floats over r's ranks, in int-sized calls. */
void dp_allreduce_floats(const struct dp_reducer *r, float *p, size_t n);

/* Sets up the row-sparse sum of the tensor tab->t[index] (V rows of C):
 * fields sparse_* of r, mask allocated. */
void dp_sparse_init(struct dp_reducer *r, const struct bert_tensor *t, size_t end);
/* Sums the word embeddings' gradient over the ranks as dp.h describes
 * (collective; called by dp_reducer_wait on every rank). */
void dp_sparse_sum(struct dp_reducer *r);

#endif
