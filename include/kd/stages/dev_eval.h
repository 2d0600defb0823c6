/* dev_eval.h: the dev-set metric of a model during training (stages
 * layer): eval-mode predictions over the dev split shared by all ranks,
 * then the task's primary metric (accuracy, or Pearson for regression). */
#ifndef KD_STAGES_DEV_EVAL_H
#define KD_STAGES_DEV_EVAL_H

#include "kd/io/dataset.h"
#include "kd/model/bert.h"
#include "kd/parallel/comm.h"

struct dev_eval {
    struct bert_model *model;
    const struct dataset *dev; /* NULL: no dev set, metric NAN */
    const struct comm *comm;
    float *logits;             /* (dev->n, K) */
};

int dev_eval_init(struct dev_eval *e, struct bert_model *m, const struct dataset *dev,
                  const struct comm *c);
/* The primary metric of the current parameters (collective). */
double dev_eval_metric(struct dev_eval *e);
void dev_eval_free(struct dev_eval *e);

#endif
