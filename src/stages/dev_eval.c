/* dev_eval.c: dev metric during training. */
#include "kd/stages/dev_eval.h"
#include "kd/stages/stage_model.h"
#include "kd/stages/task_metric.h"

#include <math.h>
#include <stdlib.h>

int dev_eval_init(struct dev_eval *e, struct bert_model *m, const struct dataset *dev,
                  const struct comm *c)
{
    e->model = m, e->dev = dev, e->comm = c, e->logits = NULL;
    if (!dev)
        return 0;
    e->logits = malloc((size_t)(dev->n * m->cfg.num_labels) * sizeof *e->logits);
    return e->logits ? 0 : -1;
}

double dev_eval_metric(struct dev_eval *e)
{
    if (!e->dev)
        return NAN;
    struct kd_err err;
    if (stage_model_predict(e->model, e->dev, e->comm, e->logits, &err))
        return NAN;
    return task_primary_metric(e->dev, e->logits, e->model->cfg.num_labels);
}

void dev_eval_free(struct dev_eval *e)
{
    free(e->logits);
    e->logits = NULL;
}
