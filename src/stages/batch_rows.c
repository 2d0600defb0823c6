/* batch_rows.c: gathering dataset rows into dense, length-cut batches. */
#include "kd/stages/batch_rows.h"

#include <stdlib.h>
#include <string.h>

int batch_rows_alloc(struct batch_rows *b, int64_t cap, int64_t T)
{
    memset(b, 0, sizeof *b);
    b->cap = cap, b->T = T;
    const size_t nt = (size_t)(cap * T);
    b->ids = malloc(nt * sizeof *b->ids);
    b->types = malloc(nt * sizeof *b->types);
    b->mask = malloc(nt * sizeof *b->mask);
    b->labels = malloc((size_t)cap * sizeof *b->labels);
    b->targets = malloc((size_t)cap * sizeof *b->targets);
    b->rows = malloc((size_t)cap * sizeof *b->rows);
    if (!b->ids || !b->types || !b->mask || !b->labels || !b->targets || !b->rows) {
        batch_rows_free(b);
        return -1;
    }
    return 0;
}

void batch_rows_free(struct batch_rows *b)
{
    free(b->ids), free(b->types), free(b->mask);
    free(b->labels), free(b->targets), free(b->rows);
    memset(b, 0, sizeof *b);
}

void batch_rows_gather(struct batch_rows *b, const struct dataset *d, const int64_t *rows,
                       int64_t n)
{
    const int64_t T = d->max_seq_len;
    int64_t t = 1;
    for (int64_t i = 0; i < n; i++)
        if (d->lengths[rows[i]] > t)
            t = d->lengths[rows[i]];
    for (int64_t i = 0; i < n; i++) {
        const int64_t r = rows[i];
        memcpy(b->ids + i * t, d->input_ids + r * T, (size_t)t * sizeof *b->ids);
        memcpy(b->types + i * t, d->token_type_ids + r * T, (size_t)t * sizeof *b->types);
        memcpy(b->mask + i * t, d->attention_mask + r * T, (size_t)t * sizeof *b->mask);
        b->labels[i] = d->labels ? d->labels[r] : -100;
        b->targets[i] = d->targets ? d->targets[r] : 0.0f;
        b->rows[i] = r;
    }
    b->n = n, b->t = t;
}

void batch_rows_sort(int64_t *rows, int64_t n, const int32_t *lengths)
{
    for (int64_t i = 1; i < n; i++) {
        int64_t r = rows[i], j = i;
        for (; j > 0 && lengths[rows[j - 1]] > lengths[r]; j--)
            rows[j] = rows[j - 1];
        rows[j] = r;
    }
}

struct bert_batch batch_rows_view(const struct batch_rows *b, int train, uint64_t first_example,
                                  uint64_t step)
{
    return (struct bert_batch){.B = b->n, .T = b->t, .input_ids = b->ids,
                               .token_type_ids = b->types, .attention_mask = b->mask,
                               .train = train, .first_example = first_example, .step = step};
}
