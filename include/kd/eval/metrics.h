/* metrics.h: GLUE-style evaluation metrics on gathered predictions (eval
 * layer; no MPI: the caller gathers predictions and labels on one rank and
 * calls these there).
 *
 * What a task reports, and its primary metric (the one that picks the best
 * checkpoint and goes into the training-curve log as the dev metric):
 *   classification: accuracy, F1 (2 classes only), MCC; primary = accuracy
 *   regression:     Pearson, Spearman;                 primary = Pearson
 * GLUE itself names one headline metric per data set (MCC for CoLA, F1 for
 * MRPC/QQP); we keep one rule per task kind so a job needs no per-data-set
 * table, and the report shows every metric anyway.
 *
 * Definitions follow scikit-learn (accuracy_score, f1_score,
 * matthews_corrcoef) and scipy.stats (pearsonr, spearmanr), with one
 * difference: where those return NaN or raise (empty input, a constant
 * series), we return the defined values below, so a report and a CSV never
 * carry NaN from a degenerate but legitimate dev set.
 *
 *   n = 0                       every metric is 0
 *   F1, no positive anywhere    0 (2TP+FP+FN = 0; scikit-learn's zero_division=0)
 *   MCC, one class only in
 *   labels or in predictions    0 (zero denominator; as scikit-learn)
 *   Pearson/Spearman, n < 2 or
 *   a constant series           0 (scipy gives NaN)
 *
 * The element-wise functions do not validate their input: a class id
 * outside 0..num_classes-1 is a caller bug (KD_ASSERT), and a non-finite
 * regression value makes Pearson/Spearman NaN. eval_scores_compute is the
 * validating entry point for data that comes from a model. */
#ifndef KD_EVAL_METRICS_H
#define KD_EVAL_METRICS_H

#include <stdint.h>

#include "kd/core/error.h"

/* Values equal the job layer's enum data_problem and io's enum tsv_problem
 * (0 classification, 1 regression), so the job's value can be passed as is. */
enum eval_task { EVAL_TASK_CLASSIFICATION = 0, EVAL_TASK_REGRESSION = 1 };

enum eval_metric {
    EVAL_METRIC_ACCURACY,
    EVAL_METRIC_F1,
    EVAL_METRIC_MCC,
    EVAL_METRIC_PEARSON,
    EVAL_METRIC_SPEARMAN,
    EVAL_METRIC_COUNT
};

/* Column/identifier name: "accuracy", "f1", "mcc", "pearson", "spearman". */
const char *eval_metric_name(enum eval_metric m);
/* Display name for tables: "accuracy", "F1", "MCC", "Pearson", "Spearman". */
const char *eval_metric_title(enum eval_metric m);

/* The metrics a task reports, in report order; returns how many (<=
 * EVAL_METRIC_COUNT). F1 is listed for classification with exactly 2
 * classes only, as GLUE reports it only for binary tasks (MRPC, QQP);
 * eval_f1 still gives macro-F1 for more classes to a caller who asks. */
int eval_task_metrics(enum eval_task task, int num_classes,
                      enum eval_metric out[EVAL_METRIC_COUNT]);
/* accuracy for classification, Pearson for regression. */
enum eval_metric eval_task_primary(enum eval_task task);

/* Fraction of i with pred[i] == label[i]. */
double eval_accuracy(const int32_t *pred, const int32_t *label, int64_t n);

/* num_classes == 2: binary F1 of the positive class 1,
 *   F1 = 2TP / (2TP + FP + FN).
 * num_classes > 2: macro-F1, the unweighted mean of the per-class F1 (each
 * class in turn positive) over the classes that occur in label or pred
 * (scikit-learn's average="macro" with labels=None: a class absent from both
 * neither helps nor hurts). Per-class zero denominators count as 0. */
double eval_f1(const int32_t *pred, const int32_t *label, int64_t n, int num_classes);

/* Matthews correlation. For K classes, with the confusion matrix C (rows
 * true, columns predicted), t_k = row sums, p_k = column sums, c = trace,
 * s = n (Gorodkin 2004, the form of scikit-learn's matthews_corrcoef):
 *   MCC = (c s - sum_k p_k t_k) / sqrt((s^2 - sum_k p_k^2)(s^2 - sum_k t_k^2))
 * For K = 2 this is (TP TN - FP FN) / sqrt((TP+FP)(TP+FN)(TN+FP)(TN+FN)).
 * In [-1, 1]; 0 when the denominator is 0. */
double eval_mcc(const int32_t *pred, const int32_t *label, int64_t n, int num_classes);

/* Pearson correlation, computed in double with centred sums (two passes). */
double eval_pearson(const float *x, const float *y, int64_t n);

/* Spearman correlation: Pearson of the ranks, tied values sharing the mean
 * of the ranks they span (scipy.stats.rankdata method="average"). */
double eval_spearman(const float *x, const float *y, int64_t n);

/* 1-based ranks of x with ties averaged (as above) into ranks[n]. Exposed
 * for tests and for callers that rank once and correlate many times. */
void eval_rank_average(double *ranks, const float *x, int64_t n);

/* Every metric of a task on one set of predictions. */
struct eval_scores {
    int task;                                /* enum eval_task */
    int num_classes;                         /* classification; 1 for regression */
    int64_t n;                               /* examples scored */
    int n_metrics;
    enum eval_metric metric[EVAL_METRIC_COUNT]; /* eval_task_metrics order */
    double value[EVAL_METRIC_COUNT];
};

/* Fills s with every metric the task reports. Classification reads
 * pred/label (class ids) and needs num_classes >= 2; regression reads
 * pred_value/target and ignores num_classes. Checks the input and returns -1
 * with "expected ... got ..." naming the first bad index: a class id outside
 * 0..num_classes-1, or a non-finite regression value (a diverged model is
 * reported, not scored as NaN). */
int eval_scores_compute(struct eval_scores *s, enum eval_task task, int num_classes,
                        const int32_t *pred, const int32_t *label,
                        const float *pred_value, const float *target, int64_t n,
                        struct kd_err *err);

/* The value of metric m in s; -1 if s does not hold m (e.g. F1 for 3
 * classes): callers ask eval_task_metrics first. */
int eval_scores_find(const struct eval_scores *s, enum eval_metric m, double *value);

#endif
