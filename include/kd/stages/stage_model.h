/* stage_model.h: a BERT model as the stages use it (stages layer): built
 * from a config, initialised from a checkpoint directory or randomly,
 * eval-mode predictions over a dataset split across ranks, and saving as a
 * Hugging Face directory (its optimizer segments: bert_optim_segments). */
#ifndef KD_STAGES_STAGE_MODEL_H
#define KD_STAGES_STAGE_MODEL_H

#include "kd/io/dataset.h"
#include "kd/model/bert.h"
#include "kd/parallel/comm.h"

/* bert_init, then the parameters from dir (NULL: bert_init_random with
 * seed and std 0.02). Returns 0 or -1 with err. */
int stage_model_open(struct bert_model *m, const struct bert_config *cfg,
                     const struct bert_opts *opts, const char *dir, uint64_t seed,
                     struct kd_err *err);

/* Eval-mode logits (d->n, K) of every example of d, identical on every
 * rank: rank r forwards its layout_shard of the rows in batches of at most
 * m->opts.B, then the shards are gathered. */
int stage_model_predict(struct bert_model *m, const struct dataset *d, const struct comm *c,
                        float *logits, struct kd_err *err);

/* Saves m as a Hugging Face directory (rank 0 writes; collective so every
 * rank learns the outcome). */
int stage_model_save(const struct bert_model *m, const char *dir, const char *vocab_path,
                     const struct label_map *labels, const struct comm *c,
                     struct kd_err *err);

#endif
