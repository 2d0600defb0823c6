/* task_metric.c: predictions and the primary metric (eval/metrics.h), so
 * the dev metric of the training curves and the report agree. */
#include "kd/stages/task_metric.h"
#include "kd/eval/metrics.h"

#include <math.h>
#include <stdlib.h>

void task_argmax(const float *logits, int64_t n, int64_t K, int32_t *pred)
{
    for (int64_t i = 0; i < n; i++) {
        const float *l = logits + i * K;
        int32_t best = 0;
        for (int64_t k = 1; k < K; k++)
            if (l[k] > l[best])
                best = (int32_t)k;
        pred[i] = best;
    }
}

double task_primary_metric(const struct dataset *d, const float *logits, int64_t K)
{
    if (K == 1)
        return eval_pearson(logits, d->targets, d->n);
    int32_t *pred = malloc((size_t)(d->n > 0 ? d->n : 1) * sizeof *pred);
    if (!pred)
        return NAN;
    task_argmax(logits, d->n, K, pred);
    const double acc = eval_accuracy(pred, d->labels, d->n);
    free(pred);
    return acc;
}
