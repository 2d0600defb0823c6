/* stage_model.c: building, predicting with and saving the stages' models. */
#include "kd/stages/stage_model.h"
#include "kd/stages/batch_rows.h"
#include "kd/core/log.h"
#include "kd/parallel/layout.h"

#include <stdlib.h>
#include <string.h>

int stage_model_open(struct bert_model *m, const struct bert_config *cfg,
                     const struct bert_opts *opts, const char *dir, uint64_t seed,
                     struct kd_err *err)
{
    if (bert_init(m, cfg, opts, err))
        return -1;
    if (!dir) {
        bert_init_random(m, seed, 0.02f);
        return 0;
    }
    if (bert_load_params(m, dir, seed, err)) {
        bert_free(m);
        return -1;
    }
    return 0;
}

int stage_model_predict(struct bert_model *m, const struct dataset *d, const struct comm *c,
                        float *logits, struct kd_err *err)
{
    const int64_t K = m->cfg.num_labels, B = m->opts.B;
    long long begin, end;
    layout_shard(d->n, c->rank, c->size, &begin, &end);
    struct batch_rows br;
    int64_t *rows = malloc((size_t)B * sizeof *rows);
    int *counts = malloc((size_t)c->size * sizeof *counts);
    int *displs = malloc((size_t)c->size * sizeof *displs);
    int rc = !rows || !counts || !displs || batch_rows_alloc(&br, B, d->max_seq_len);
    if (comm_agree_max(c, rc)) {
        free(rows), free(counts), free(displs);
        if (!rc)
            batch_rows_free(&br);
        kd_errf(err, "out of memory for predictions");
        return -1;
    }
    for (int64_t pos = begin; pos < end; pos += B) {
        const int64_t n = pos + B <= end ? B : end - pos;
        for (int64_t i = 0; i < n; i++)
            rows[i] = pos + i;
        batch_rows_gather(&br, d, rows, n);
        struct bert_batch b = batch_rows_view(&br, 0, 0, 0);
        bert_forward(m, &b);
        memcpy(logits + pos * K, bert_logits(m), (size_t)(n * K) * sizeof *logits);
    }
    for (int r = 0; r < c->size; r++) {
        long long b0, b1;
        layout_shard(d->n, r, c->size, &b0, &b1);
        counts[r] = (int)((b1 - b0) * K);
        displs[r] = (int)(b0 * K);
    }
    MPI_CHECK(MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, logits, counts, displs,
                             MPI_FLOAT, c->world));
    batch_rows_free(&br);
    free(rows), free(counts), free(displs);
    return 0;
}

int stage_model_save(const struct bert_model *m, const char *dir, const char *vocab_path,
                     const struct label_map *labels, const struct comm *c,
                     struct kd_err *err)
{
    int rc = 0;
    if (c->rank == 0) {
        struct hf_labels hl = {0};
        if (labels && labels->names && labels->num_labels == m->cfg.num_labels) {
            hl.count = labels->num_labels;
            hl.names = labels->names; /* borrowed: not freed here */
            hl.from_file = 1;
        }
        rc = bert_save_dir(m, dir, vocab_path, hl.names ? &hl : NULL, err);
    }
    if (comm_agree_max(c, rc ? 1 : 0)) {
        if (c->rank != 0)
            kd_errf(err, "rank 0 could not save the model to %s", dir);
        return -1;
    }
    return 0;
}
