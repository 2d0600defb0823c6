/* task_metric.c: predictions and the primary metric. */
#include "kd/stages/task_metric.h"

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
    if (d->n == 0)
        return NAN;
    if (K == 1) { /* Pearson correlation of predictions and targets */
        double mx = 0, my = 0;
        for (int64_t i = 0; i < d->n; i++)
            mx += logits[i], my += d->targets[i];
        mx /= (double)d->n, my /= (double)d->n;
        double sxy = 0, sxx = 0, syy = 0;
        for (int64_t i = 0; i < d->n; i++) {
            const double x = logits[i] - mx, y = d->targets[i] - my;
            sxy += x * y, sxx += x * x, syy += y * y;
        }
        return sxx > 0 && syy > 0 ? sxy / sqrt(sxx * syy) : 0.0;
    }
    int32_t *pred = malloc((size_t)d->n * sizeof *pred);
    if (!pred)
        return NAN;
    task_argmax(logits, d->n, K, pred);
    int64_t right = 0;
    for (int64_t i = 0; i < d->n; i++)
        right += pred[i] == d->labels[i];
    free(pred);
    return (double)right / (double)d->n;
}
