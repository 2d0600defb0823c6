/* teacher_reader.h: the teacher's outputs for a distill stage, read from
 * the teacher store for arbitrary (shuffled) rows and cut to the batch's
 * length (stages layer). It checks once, at open, that the store holds
 * everything the stage's loss terms need, naming what is missing.
 *
 * The small per-example components (logits, [CLS] hidden states) are read
 * whole into memory at open when they fit TEACHER_READER_CACHE_BYTES: a
 * training batch gathers shuffled rows, and reading each row from its
 * chunk would decompress and checksum a whole chunk per row. Per-token
 * hidden states and attention maps stay on disk and are read per row. */
#ifndef KD_STAGES_TEACHER_READER_H
#define KD_STAGES_TEACHER_READER_H

#include "kd/io/teacher_store.h"
#include "kd/kd/loss_term.h"
#include "kd/model/bert_config.h"
#include "kd/stages/batch_rows.h"

struct teacher_reader {
    store_reader_t *r;
    const struct store_spec *spec;
    struct bert_config cfg;          /* the teacher's, from the store */
    struct kd_needs needs;
    int64_t B, T;                    /* maximum batch */
    float *logits;                   /* (B,K) */
    float *hidden[BERT_MAX_LAYERS + 1]; /* needed layers: (B,T,Ct) or (B,Ct) */
    float *probs[BERT_MAX_LAYERS];   /* needed layers l-1: (B,NH,T,T) */
    float *row;                      /* one example's largest read (A,T,T) */
    /* whole components in memory (NULL: read per row) */
    float *all_logits;                  /* (N,K) */
    float *all_hidden[BERT_MAX_LAYERS + 1]; /* (N,Ct), [CLS] stores */
};

/* Memory a reader may use for its in-memory components, per rank. */
#define TEACHER_READER_CACHE_BYTES ((size_t)2 << 30)

/* Opens path (serial, read-only) expecting the given provenance, and checks
 * that it holds `needs` (stage: name for messages). */
int teacher_reader_open(struct teacher_reader *tr, const char *path,
                        const struct store_expect *expect, const struct kd_needs *needs,
                        int64_t B, int64_t T, const char *stage, struct kd_err *err);
/* Reads the teacher's outputs for the gathered rows into a view. */
int teacher_reader_batch(struct teacher_reader *tr, const struct batch_rows *b,
                         struct kd_teacher_view *v, struct kd_err *err);
void teacher_reader_close(struct teacher_reader *tr);

#endif
