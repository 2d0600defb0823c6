/* metrics.c: accuracy, F1, MCC, Pearson and Spearman on gathered
 * predictions (eval layer; no MPI). Definitions and the values of degenerate
 * cases are in include/kd/eval/metrics.h. Counts are int64 and sums double:
 * a GLUE dev set is at most ~10^5 examples, so s^2 in MCC (~10^10) is exact
 * in double. */
#include "kd/eval/metrics.h"

#include <math.h>
#include <stdlib.h>

static const char *const metric_names[EVAL_METRIC_COUNT] = {
    [EVAL_METRIC_ACCURACY] = "accuracy", [EVAL_METRIC_F1] = "f1",
    [EVAL_METRIC_MCC] = "mcc",           [EVAL_METRIC_PEARSON] = "pearson",
    [EVAL_METRIC_SPEARMAN] = "spearman",
};
static const char *const metric_titles[EVAL_METRIC_COUNT] = {
    [EVAL_METRIC_ACCURACY] = "accuracy", [EVAL_METRIC_F1] = "F1",
    [EVAL_METRIC_MCC] = "MCC",           [EVAL_METRIC_PEARSON] = "Pearson",
    [EVAL_METRIC_SPEARMAN] = "Spearman",
};

const char *eval_metric_name(enum eval_metric m)
{
    KD_ASSERT(m >= 0 && m < EVAL_METRIC_COUNT, "metric %d", (int)m);
    return metric_names[m];
}

const char *eval_metric_title(enum eval_metric m)
{
    KD_ASSERT(m >= 0 && m < EVAL_METRIC_COUNT, "metric %d", (int)m);
    return metric_titles[m];
}

int eval_task_metrics(enum eval_task task, int num_classes,
                      enum eval_metric out[EVAL_METRIC_COUNT])
{
    int n = 0;
    if (task == EVAL_TASK_REGRESSION) {
        out[n++] = EVAL_METRIC_PEARSON;
        out[n++] = EVAL_METRIC_SPEARMAN;
        return n;
    }
    out[n++] = EVAL_METRIC_ACCURACY;
    if (num_classes == 2)
        out[n++] = EVAL_METRIC_F1;
    out[n++] = EVAL_METRIC_MCC;
    return n;
}

enum eval_metric eval_task_primary(enum eval_task task)
{
    return task == EVAL_TASK_REGRESSION ? EVAL_METRIC_PEARSON : EVAL_METRIC_ACCURACY;
}

double eval_accuracy(const int32_t *pred, const int32_t *label, int64_t n)
{
    if (n <= 0)
        return 0.0;
    int64_t hit = 0;
    for (int64_t i = 0; i < n; i++)
        hit += pred[i] == label[i];
    return (double)hit / (double)n;
}

/* K x K confusion matrix, rows true class, columns predicted (free()). */
static int64_t *confusion(const int32_t *pred, const int32_t *label, int64_t n, int k)
{
    KD_ASSERT(k >= 2, "num_classes %d", k);
    int64_t *c = kd_calloc((size_t)k * (size_t)k, sizeof *c);
    for (int64_t i = 0; i < n; i++) {
        KD_ASSERT(label[i] >= 0 && label[i] < k && pred[i] >= 0 && pred[i] < k,
                  "example %lld: label %d pred %d, expected 0..%d", (long long)i,
                  (int)label[i], (int)pred[i], k - 1);
        c[(size_t)label[i] * (size_t)k + (size_t)pred[i]]++;
    }
    return c;
}

/* F1 of class j as the positive class: 2TP / (2TP + FP + FN), 0 if 0/0. */
static double class_f1(const int64_t *c, int k, int j, int64_t *support)
{
    int64_t tp = c[(size_t)j * (size_t)k + (size_t)j], row = 0, col = 0;
    for (int i = 0; i < k; i++) {
        row += c[(size_t)j * (size_t)k + (size_t)i]; /* true j: TP + FN */
        col += c[(size_t)i * (size_t)k + (size_t)j]; /* predicted j: TP + FP */
    }
    *support = row + col;
    int64_t den = row + col; /* 2TP + FP + FN */
    return den > 0 ? 2.0 * (double)tp / (double)den : 0.0;
}

double eval_f1(const int32_t *pred, const int32_t *label, int64_t n, int num_classes)
{
    if (n <= 0)
        return 0.0;
    int64_t *c = confusion(pred, label, n, num_classes);
    int64_t seen;
    double f1;
    if (num_classes == 2) {
        f1 = class_f1(c, 2, 1, &seen);
    } else {
        /* macro over the classes present in labels or predictions */
        double sum = 0.0;
        int present = 0;
        for (int j = 0; j < num_classes; j++) {
            double fj = class_f1(c, num_classes, j, &seen);
            if (seen > 0) {
                sum += fj;
                present++;
            }
        }
        f1 = present > 0 ? sum / present : 0.0;
    }
    free(c);
    return f1;
}

double eval_mcc(const int32_t *pred, const int32_t *label, int64_t n, int num_classes)
{
    if (n <= 0)
        return 0.0;
    int k = num_classes;
    int64_t *c = confusion(pred, label, n, k);
    double s = (double)n, trace = 0.0, pt = 0.0, pp = 0.0, tt = 0.0;
    for (int j = 0; j < k; j++) {
        double t = 0.0, p = 0.0;
        for (int i = 0; i < k; i++) {
            t += (double)c[(size_t)j * (size_t)k + (size_t)i];
            p += (double)c[(size_t)i * (size_t)k + (size_t)j];
        }
        trace += (double)c[(size_t)j * (size_t)k + (size_t)j];
        pt += p * t;
        pp += p * p;
        tt += t * t;
    }
    free(c);
    double cov_pp = s * s - pp, cov_tt = s * s - tt;
    if (cov_pp <= 0.0 || cov_tt <= 0.0)
        return 0.0; /* one class only in predictions or in labels */
    double r = (trace * s - pt) / sqrt(cov_pp * cov_tt);
    return r > 1.0 ? 1.0 : r < -1.0 ? -1.0 : r;
}

/* Pearson on double data, shared by the float inputs and the ranks. */
static double pearson_d(const double *x, const double *y, int64_t n)
{
    if (n < 2)
        return 0.0;
    double mx = 0.0, my = 0.0;
    for (int64_t i = 0; i < n; i++) {
        mx += x[i];
        my += y[i];
    }
    mx /= (double)n;
    my /= (double)n;
    double sxy = 0.0, sxx = 0.0, syy = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double dx = x[i] - mx, dy = y[i] - my;
        sxy += dx * dy;
        sxx += dx * dx;
        syy += dy * dy;
    }
    if (sxx <= 0.0 || syy <= 0.0)
        return 0.0; /* a constant series */
    double r = sxy / sqrt(sxx * syy);
    return r > 1.0 ? 1.0 : r < -1.0 ? -1.0 : r;
}

static double *to_double(const float *x, int64_t n)
{
    double *d = kd_malloc((size_t)(n > 0 ? n : 1) * sizeof *d);
    for (int64_t i = 0; i < n; i++)
        d[i] = (double)x[i];
    return d;
}

/* NaN if any value is not finite (documented in the header). */
static int all_finite(const float *x, const float *y, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(x[i]) || !isfinite(y[i]))
            return 0;
    return 1;
}

double eval_pearson(const float *x, const float *y, int64_t n)
{
    if (n < 2)
        return 0.0;
    if (!all_finite(x, y, n))
        return NAN;
    double *dx = to_double(x, n), *dy = to_double(y, n);
    double r = pearson_d(dx, dy, n);
    free(dx);
    free(dy);
    return r;
}

struct ranked {
    float v;
    int64_t i;
};

/* Orders by value, then by index so the sort is deterministic; NaN sorts
 * last so that ranking never sees an inconsistent order (eval_spearman
 * returns NaN for such input before ranking). */
static int ranked_cmp(const void *pa, const void *pb)
{
    const struct ranked *a = pa, *b = pb;
    int an = isnan(a->v), bn = isnan(b->v);
    if (an != bn)
        return an - bn;
    if (!an && a->v != b->v)
        return a->v < b->v ? -1 : 1;
    return (a->i > b->i) - (a->i < b->i);
}

void eval_rank_average(double *ranks, const float *x, int64_t n)
{
    if (n <= 0)
        return;
    struct ranked *r = kd_malloc((size_t)n * sizeof *r);
    for (int64_t i = 0; i < n; i++)
        r[i] = (struct ranked){x[i], i};
    qsort(r, (size_t)n, sizeof *r, ranked_cmp);
    /* a run of equal values at sorted positions lo..hi-1 (0-based) spans
     * ranks lo+1..hi, whose mean is (lo + 1 + hi) / 2 */
    for (int64_t lo = 0; lo < n;) {
        int64_t hi = lo + 1;
        while (hi < n && r[hi].v == r[lo].v)
            hi++;
        double mean = 0.5 * (double)(lo + 1 + hi);
        for (int64_t j = lo; j < hi; j++)
            ranks[r[j].i] = mean;
        lo = hi;
    }
    free(r);
}

double eval_spearman(const float *x, const float *y, int64_t n)
{
    if (n < 2)
        return 0.0;
    if (!all_finite(x, y, n))
        return NAN;
    double *rx = kd_malloc((size_t)n * sizeof *rx), *ry = kd_malloc((size_t)n * sizeof *ry);
    eval_rank_average(rx, x, n);
    eval_rank_average(ry, y, n);
    double r = pearson_d(rx, ry, n);
    free(rx);
    free(ry);
    return r;
}

int eval_scores_compute(struct eval_scores *s, enum eval_task task, int num_classes,
                        const int32_t *pred, const int32_t *label,
                        const float *pred_value, const float *target, int64_t n,
                        struct kd_err *err)
{
    *s = (struct eval_scores){.task = task, .n = n};
    if (n < 0)
        return kd_errf(err, "evaluation: expected a non-negative example count, got %lld",
                       (long long)n);
    if (task == EVAL_TASK_REGRESSION) {
        s->num_classes = 1;
        for (int64_t i = 0; i < n; i++) {
            if (!isfinite(pred_value[i]))
                return kd_errf(err, "evaluation: expected a finite prediction for example "
                               "%lld, got %g (the model has diverged?)", (long long)i,
                               (double)pred_value[i]);
            if (!isfinite(target[i]))
                return kd_errf(err, "evaluation: expected a finite target for example %lld, "
                               "got %g", (long long)i, (double)target[i]);
        }
    } else if (task == EVAL_TASK_CLASSIFICATION) {
        if (num_classes < 2)
            return kd_errf(err, "evaluation: expected at least 2 classes, got %d",
                           num_classes);
        s->num_classes = num_classes;
        for (int64_t i = 0; i < n; i++) {
            if (label[i] < 0 || label[i] >= num_classes)
                return kd_errf(err, "evaluation: expected a label 0..%d for example %lld, "
                               "got %d", num_classes - 1, (long long)i, (int)label[i]);
            if (pred[i] < 0 || pred[i] >= num_classes)
                return kd_errf(err, "evaluation: expected a predicted class 0..%d for "
                               "example %lld, got %d", num_classes - 1, (long long)i,
                               (int)pred[i]);
        }
    } else {
        return kd_errf(err, "evaluation: expected task 0 (classification) or 1 "
                       "(regression), got %d", (int)task);
    }
    s->n_metrics = eval_task_metrics(task, num_classes, s->metric);
    for (int j = 0; j < s->n_metrics; j++) {
        double v = 0.0;
        switch (s->metric[j]) {
        case EVAL_METRIC_ACCURACY: v = eval_accuracy(pred, label, n); break;
        case EVAL_METRIC_F1: v = eval_f1(pred, label, n, num_classes); break;
        case EVAL_METRIC_MCC: v = eval_mcc(pred, label, n, num_classes); break;
        case EVAL_METRIC_PEARSON: v = eval_pearson(pred_value, target, n); break;
        case EVAL_METRIC_SPEARMAN: v = eval_spearman(pred_value, target, n); break;
        case EVAL_METRIC_COUNT: KD_FATAL("metric count is not a metric");
        }
        s->value[j] = v;
    }
    return 0;
}

int eval_scores_find(const struct eval_scores *s, enum eval_metric m, double *value)
{
    for (int j = 0; j < s->n_metrics; j++)
        if (s->metric[j] == m) {
            *value = s->value[j];
            return 0;
        }
    return -1;
}
