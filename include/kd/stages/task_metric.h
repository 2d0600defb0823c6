/* task_metric.h: the task's metrics from logits and a dataset's labels
 * (stages layer, over the eval layer's metric functions). */
#ifndef KD_STAGES_TASK_METRIC_H
#define KD_STAGES_TASK_METRIC_H

#include "kd/io/dataset.h"

/* Accuracy for classification, Pearson for regression (K == 1). */
double task_primary_metric(const struct dataset *d, const float *logits, int64_t K);
/* Class predictions (argmax; ties to the lower id) of (n,K) logits. */
void task_argmax(const float *logits, int64_t n, int64_t K, int32_t *pred);

#endif
