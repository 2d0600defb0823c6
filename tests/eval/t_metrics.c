/* t_metrics.c: the evaluation metrics against hand-computed values and
 * against scikit-learn / scipy on fixed arrays, average ranks with ties,
 * the degenerate cases of include/kd/eval/metrics.h, the task's metric list
 * and primary metric, and eval_scores_compute's input checks.
 *
 * Reference values were computed once (Debian 12: python3-sklearn 1.2.1,
 * python3-scipy 1.10.1) with
 *   accuracy_score(t, p), f1_score(t, p, average="binary" | "macro"),
 *   matthews_corrcoef(t, p), pearsonr(x, y)[0], spearmanr(x, y)[0],
 *   scipy.stats.rankdata(x)   (method="average")
 * on exactly the arrays below (regression arrays as float32, values k/4,
 * k/8, k/16 that float32 holds exactly), printed with "%.17g". */
#include "kd/eval/metrics.h"
#include "../tap.h"

#include <math.h>
#include <string.h>

#define N(a) ((int64_t)(sizeof(a) / sizeof((a)[0])))
#define TOL 1e-12

static void test_binary_by_hand(void)
{
    /* TP 5 (i = 0 3 6 8 11), FN 2 (i = 2 9), FP 1 (i = 5), TN 4 */
    const int32_t t[] = {1, 0, 1, 1, 0, 0, 1, 0, 1, 1, 0, 1};
    const int32_t p[] = {1, 0, 0, 1, 0, 1, 1, 0, 1, 0, 0, 1};
    ok_near(eval_accuracy(p, t, N(t)), 9.0 / 12.0, 0, TOL, "binary accuracy = 9/12");
    ok_near(eval_f1(p, t, N(t), 2), 10.0 / 13.0, 0, TOL, "binary F1 = 2TP/(2TP+FP+FN) = 10/13");
    ok_near(eval_mcc(p, t, N(t), 2), 18.0 / sqrt(6.0 * 7.0 * 5.0 * 6.0), 0, TOL,
            "binary MCC = (5*4 - 1*2)/sqrt(6*7*5*6)");
    /* scikit-learn: 0.75, 0.76923076923076916, 0.50709255283710997 */
    ok_near(eval_f1(p, t, N(t), 2), 0.76923076923076916, 0, TOL, "binary F1 = sklearn");
    ok_near(eval_mcc(p, t, N(t), 2), 0.50709255283710997, 0, TOL, "binary MCC = sklearn");
    /* swapping predictions and labels swaps FP and FN: F1 and MCC unchanged */
    ok_near(eval_mcc(t, p, N(t), 2), eval_mcc(p, t, N(t), 2), 0, TOL, "MCC is symmetric");
}

static void test_multiclass_vs_sklearn(void)
{
    const int32_t t[] = {0, 1, 2, 2, 1, 0, 2, 1, 0, 2};
    const int32_t p[] = {0, 2, 2, 1, 1, 0, 2, 1, 1, 2};
    ok_near(eval_accuracy(p, t, N(t)), 0.69999999999999996, 0, TOL, "3-class accuracy");
    ok_near(eval_f1(p, t, N(t), 3), 0.70714285714285718, 0, TOL,
            "3-class macro-F1 = sklearn average=macro");
    ok_near(eval_mcc(p, t, N(t), 3), 0.5539117094069973, 0, TOL,
            "3-class MCC = sklearn (Gorodkin)");
    /* by hand, 2TP/(2TP+FP+FN) per class: class 0 TP 2 FN 1 FP 0 -> 4/5;
     * class 1 TP 2 FN 1 FP 2 -> 4/7; class 2 TP 3 FN 1 FP 1 -> 6/8 */
    ok_near(eval_f1(p, t, N(t), 3), (4.0 / 5 + 4.0 / 7 + 6.0 / 8) / 3, 0, TOL,
            "3-class macro-F1 by hand = (4/5 + 4/7 + 3/4)/3");

    /* num_classes 4 with class 3 in neither array: averaged over present ones */
    const int32_t t4[] = {0, 1, 2, 0, 1, 2, 0, 0, 1, 2, 2, 2};
    const int32_t p4[] = {0, 2, 2, 0, 1, 1, 1, 0, 1, 2, 0, 2};
    ok_near(eval_f1(p4, t4, N(t4), 4), 0.66269841269841268, 0, TOL,
            "macro-F1 skips a class absent from labels and predictions (sklearn labels=None)");
    ok_near(eval_mcc(p4, t4, N(t4), 4), 0.50529115263991142, 0, TOL,
            "MCC unchanged by an absent class");
    ok_near(eval_accuracy(p4, t4, N(t4)), 0.66666666666666663, 0, TOL, "accuracy 8/12");
}

static void test_classification_degenerate(void)
{
    const int32_t zero[] = {0, 0, 0, 0}, one[] = {1, 1, 1, 1};
    const int32_t alt[] = {0, 1, 0, 1}, inv[] = {1, 0, 1, 0};
    ok(eval_accuracy(one, one, 4) == 1.0 && eval_f1(one, one, 4, 2) == 1.0 &&
       eval_mcc(one, one, 4, 2) == 0.0,
       "all positive, all right: accuracy 1, F1 1, MCC 0 (sklearn: 1, 1, 0)");
    ok(eval_accuracy(zero, zero, 4) == 1.0 && eval_f1(zero, zero, 4, 2) == 0.0 &&
       eval_mcc(zero, zero, 4, 2) == 0.0,
       "no positive anywhere: accuracy 1, F1 0, MCC 0 (sklearn: 1, 0, 0)");
    ok(eval_accuracy(inv, alt, 4) == 0.0 && eval_f1(inv, alt, 4, 2) == 0.0 &&
       eval_mcc(inv, alt, 4, 2) == -1.0, "all wrong: accuracy 0, F1 0, MCC -1");
    ok(eval_mcc(alt, alt, 4, 2) == 1.0 && eval_mcc(alt, alt, 4, 3) == 1.0,
       "perfect: MCC 1 (also with an unused third class)");
    /* constant prediction on mixed labels: sklearn F1 0.74999999999999989, MCC 0 */
    const int32_t t5[] = {0, 1, 0, 1, 1}, p5[] = {1, 1, 1, 1, 1};
    ok_near(eval_f1(p5, t5, 5, 2), 0.74999999999999989, 0, TOL, "constant prediction: F1 3/4");
    ok(eval_mcc(p5, t5, 5, 2) == 0.0 && eval_accuracy(p5, t5, 5) == 0.6,
       "constant prediction: MCC 0, accuracy 0.6");
    ok(eval_accuracy(NULL, NULL, 0) == 0.0 && eval_f1(NULL, NULL, 0, 2) == 0.0 &&
       eval_f1(NULL, NULL, 0, 3) == 0.0 && eval_mcc(NULL, NULL, 0, 2) == 0.0,
       "n = 0: accuracy, F1, macro-F1, MCC all 0");
}

static void test_ranks(void)
{
    const float x[] = {3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5};
    /* scipy.stats.rankdata */
    const double want[] = {4.5, 1.5, 6, 1.5, 8, 11, 3, 10, 8, 4.5, 8};
    double r[11];
    eval_rank_average(r, x, 11);
    int same = 1;
    for (int i = 0; i < 11; i++)
        same &= r[i] == want[i];
    ok(same, "average ranks with ties = scipy rankdata (1,1 -> 1.5; 5,5,5 -> 8)");
    const float c[] = {2, 2, 2, 2};
    eval_rank_average(r, c, 4);
    ok(r[0] == 2.5 && r[1] == 2.5 && r[2] == 2.5 && r[3] == 2.5, "all tied: every rank 2.5");
}

static void test_regression(void)
{
    const float x[] = {0.5f, 2.0f, 1.0f, 3.5f, 2.0f, 4.0f, 0.0f, 2.5f};
    const float y[] = {1.0f, 1.5f, 1.0f, 3.0f, 2.5f, 5.0f, -1.0f, 2.0f};
    ok_near(eval_pearson(x, y, 8), 0.93070032403255243, 0, 1e-12, "Pearson = scipy pearsonr");
    ok_near(eval_spearman(x, y, 8), 0.95180722891566261, 0, 1e-12,
            "Spearman with ties in x and y = scipy spearmanr");

    float a[40], b[40];
    for (int i = 0; i < 40; i++) {
        a[i] = (float)((i * 37) % 11) / 4.0f;
        b[i] = (float)((i * i) % 13) / 8.0f - (float)i / 16.0f;
    }
    ok_near(eval_pearson(a, b, 40), 0.072190014665289959, 0, 1e-12,
            "Pearson, n = 40 = scipy");
    ok_near(eval_spearman(a, b, 40), 0.1039964855980292, 0, 1e-12,
            "Spearman, n = 40, heavy ties = scipy");

    /* by hand: y = 2x + 1 is Pearson 1; a monotone non-linear map is Spearman 1 */
    const float u[] = {1, 2, 3, 4}, v[] = {3, 5, 7, 9}, w[] = {1, 8, 27, 64}, vr[] = {9, 7, 5, 3};
    ok_near(eval_pearson(u, v, 4), 1.0, 0, 1e-15, "Pearson of a line = 1");
    ok_near(eval_pearson(u, vr, 4), -1.0, 0, 1e-15, "Pearson of a falling line = -1");
    ok(eval_spearman(u, w, 4) == 1.0 && eval_pearson(u, w, 4) < 1.0,
       "x^3: Spearman exactly 1, Pearson below 1");

    const float k[] = {2, 2, 2, 2};
    ok(eval_pearson(u, k, 4) == 0.0 && eval_spearman(u, k, 4) == 0.0 &&
       eval_pearson(k, u, 4) == 0.0, "constant series: Pearson 0, Spearman 0 (scipy: NaN)");
    ok(eval_pearson(u, v, 1) == 0.0 && eval_spearman(u, v, 1) == 0.0 &&
       eval_pearson(NULL, NULL, 0) == 0.0 && eval_spearman(NULL, NULL, 0) == 0.0,
       "n = 1 and n = 0: 0");
    const float bad[] = {1, NAN, 3, 4};
    ok(isnan(eval_pearson(u, bad, 4)) && isnan(eval_spearman(bad, u, 4)),
       "non-finite input: NaN (documented)");
}

static void test_task_metrics(void)
{
    enum eval_metric m[EVAL_METRIC_COUNT];
    int n = eval_task_metrics(EVAL_TASK_CLASSIFICATION, 2, m);
    ok(n == 3 && m[0] == EVAL_METRIC_ACCURACY && m[1] == EVAL_METRIC_F1 &&
       m[2] == EVAL_METRIC_MCC, "binary classification: accuracy, F1, MCC");
    n = eval_task_metrics(EVAL_TASK_CLASSIFICATION, 3, m);
    ok(n == 2 && m[0] == EVAL_METRIC_ACCURACY && m[1] == EVAL_METRIC_MCC,
       "3 classes: accuracy, MCC (no F1)");
    n = eval_task_metrics(EVAL_TASK_REGRESSION, 1, m);
    ok(n == 2 && m[0] == EVAL_METRIC_PEARSON && m[1] == EVAL_METRIC_SPEARMAN,
       "regression: Pearson, Spearman");
    ok(eval_task_primary(EVAL_TASK_CLASSIFICATION) == EVAL_METRIC_ACCURACY &&
       eval_task_primary(EVAL_TASK_REGRESSION) == EVAL_METRIC_PEARSON,
       "primary: accuracy / Pearson");
    ok(!strcmp(eval_metric_name(EVAL_METRIC_MCC), "mcc") &&
       !strcmp(eval_metric_title(EVAL_METRIC_MCC), "MCC") &&
       !strcmp(eval_metric_name(EVAL_METRIC_SPEARMAN), "spearman"), "metric names");
}

static void test_scores_compute(void)
{
    const int32_t t[] = {1, 0, 1, 1, 0, 0, 1, 0, 1, 1, 0, 1};
    const int32_t p[] = {1, 0, 0, 1, 0, 1, 1, 0, 1, 0, 0, 1};
    struct eval_scores s;
    struct kd_err err;
    double v;
    ok(eval_scores_compute(&s, EVAL_TASK_CLASSIFICATION, 2, p, t, NULL, NULL, 12, &err) == 0 &&
       s.n_metrics == 3 && s.n == 12 && s.value[0] == 0.75 &&
       fabs(s.value[1] - 10.0 / 13.0) < TOL && eval_scores_find(&s, EVAL_METRIC_MCC, &v) == 0 &&
       fabs(v - 0.50709255283710997) < TOL, "scores: binary task, every metric");
    ok(eval_scores_find(&s, EVAL_METRIC_PEARSON, &v) == -1, "scores: Pearson not held");

    const float x[] = {0.5f, 2.0f, 1.0f, 3.5f}, y[] = {1.0f, 1.5f, 1.0f, 3.0f};
    ok(eval_scores_compute(&s, EVAL_TASK_REGRESSION, 0, NULL, NULL, x, y, 4, &err) == 0 &&
       s.n_metrics == 2 && s.num_classes == 1 && s.value[0] == eval_pearson(x, y, 4) &&
       s.value[1] == eval_spearman(x, y, 4), "scores: regression task");

    ok(eval_scores_compute(&s, EVAL_TASK_CLASSIFICATION, 2, NULL, NULL, NULL, NULL, 0,
                           &err) == 0 && s.value[0] == 0 && s.value[1] == 0 && s.value[2] == 0,
       "scores: n = 0 gives zeros");

    const int32_t bad_label[] = {0, 2}, good[] = {0, 1};
    ok(eval_scores_compute(&s, EVAL_TASK_CLASSIFICATION, 2, good, bad_label, NULL, NULL, 2,
                           &err) == -1 &&
       strstr(err.msg, "expected a label 0..1 for example 1, got 2"), "bad label: %s", err.msg);
    const int32_t bad_pred[] = {-1, 0};
    ok(eval_scores_compute(&s, EVAL_TASK_CLASSIFICATION, 2, bad_pred, good, NULL, NULL, 2,
                           &err) == -1 &&
       strstr(err.msg, "expected a predicted class 0..1 for example 0, got -1"),
       "bad prediction: %s", err.msg);
    ok(eval_scores_compute(&s, EVAL_TASK_CLASSIFICATION, 1, good, good, NULL, NULL, 2,
                           &err) == -1 && strstr(err.msg, "expected at least 2 classes, got 1"),
       "one class: %s", err.msg);
    const float inf[] = {1.0f, INFINITY};
    ok(eval_scores_compute(&s, EVAL_TASK_REGRESSION, 1, NULL, NULL, inf, x, 2, &err) == -1 &&
       strstr(err.msg, "expected a finite prediction for example 1, got inf"),
       "non-finite prediction: %s", err.msg);
}

int main(void)
{
    test_binary_by_hand();
    test_multiclass_vs_sklearn();
    test_classification_degenerate();
    test_ranks();
    test_regression();
    test_task_metrics();
    test_scores_compute();
    return done_testing();
}
