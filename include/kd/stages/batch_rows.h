/* batch_rows.h: dense batches gathered from a dataset's rows (stages
 * layer). Rows of similar length go together and each micro-batch is cut
 * to its longest row: padding is masked, so the result is the same as at
 * full length, only less padding is computed. */
#ifndef KD_STAGES_BATCH_ROWS_H
#define KD_STAGES_BATCH_ROWS_H

#include <stdint.h>

#include "kd/io/dataset.h"
#include "kd/model/bert.h"

struct batch_rows {
    int64_t cap;              /* rows the buffers hold */
    int64_t T;                /* the dataset's max_seq_len */
    int64_t n, t;             /* rows gathered and their common length */
    int32_t *ids, *types, *mask; /* (n,t) */
    int32_t *labels;          /* (n) class ids, or -100 without labels */
    float *targets;           /* (n) regression targets (0 without) */
    int64_t *rows;            /* (n) dataset rows */
};

int batch_rows_alloc(struct batch_rows *b, int64_t cap, int64_t T);
void batch_rows_free(struct batch_rows *b);

/* Copies rows[0..n) of d densely, cut to the longest of them. */
void batch_rows_gather(struct batch_rows *b, const struct dataset *d, const int64_t *rows,
                       int64_t n);

/* Stable sort of rows[0..n) by length (shortest first). */
void batch_rows_sort(int64_t *rows, int64_t n, const int32_t *lengths);

/* The engine's view of the gathered rows. */
struct bert_batch batch_rows_view(const struct batch_rows *b, int train, uint64_t first_example,
                                  uint64_t step);

#endif
