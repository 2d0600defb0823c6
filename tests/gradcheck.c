/* gradcheck.c: see gradcheck.h. Uses the TAP emitter for its verdicts.
 *
 * Error budget of one central difference with loss L in double:
 *   truncation  eps^2 / 6 * |d3L/dx3|
 *   rounding    ~ ulp(y) * |w| * (number of outputs x touches) / (2 eps)
 * where the outputs themselves are fp32. Each test picks eps and the
 * tolerances from these two terms and states them in its header. */
#include "gradcheck.h"
#include "tap.h"
#include "kd/core/error.h"
#include "kd/core/rng.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Philox stream ids of the checker, distinct from any test's own data. */
#define GC_STREAM_WEIGHTS 0x6763770000000001ull
#define GC_STREAM_SAMPLE 0x6763770000000002ull
#define GC_STREAM_DATA 0x6763770000000003ull

void gc_rand(float *x, int64_t n, float lo, float hi, uint64_t seed)
{
    rng_uniform(x, lo, hi, seed, GC_STREAM_DATA, 0, n);
}

int gc_all_finite(const float *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(x[i]))
            return 0;
    return 1;
}

int gc_check_close(const char *what, const float *got, const double *want, int64_t n,
                   double rel_tol, double floor)
{
    double worst = 0.0;
    int64_t at = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - want[i]);
        double s = fabs(want[i]) > floor ? fabs(want[i]) : floor;
        double e = d / s;
        if (!(e <= worst)) { /* NaN counts as worst */
            worst = isnan(e) ? INFINITY : e;
            at = i;
        }
    }
    int pass = ok(worst <= rel_tol, "%s: max rel err %.3g <= %.1g (abs floor %.1g, %lld values)",
                  what, worst, rel_tol, floor, (long long)n);
    if (!pass && n > 0)
        diag("worst at %lld: got %.9g want %.9g", (long long)at, (double)got[at], want[at]);
    return pass;
}

double gc_weighted_sum(const struct gc_problem *p)
{
    double L = 0.0;
    for (int k = 0; k < p->n_outputs; k++) {
        const struct gc_output *o = &p->outputs[k];
        for (int64_t i = 0; i < o->n; i++)
            L += (double)o->dy[i] * (o->y ? (double)o->y[i] : o->yd[i]);
    }
    return L;
}

static int outputs_finite(const struct gc_problem *p, const char **bad)
{
    for (int k = 0; k < p->n_outputs; k++) {
        const struct gc_output *o = &p->outputs[k];
        for (int64_t i = 0; i < o->n; i++) {
            double v = o->y ? (double)o->y[i] : o->yd[i];
            if (!isfinite(v)) {
                *bad = o->name;
                return 0;
            }
        }
    }
    return 1;
}

/* One parameter: central differences on all or sampled entries. */
static int check_param(const struct gc_problem *p, const struct gc_opts *o,
                       const struct gc_param *prm, const float *analytic)
{
    const int64_t n = prm->n;
    const int64_t m = (o->max_entries > 0 && n > o->max_entries) ? o->max_entries : n;
    double worst_ratio = 0.0, worst_a = 0.0, worst_fd = 0.0;
    int64_t worst_at = -1, failed = 0;
    for (int64_t s = 0; s < m; s++) {
        /* all entries in order, or a seeded sample with replacement (the
         * same entries on every run, so a failure reproduces) */
        int64_t i = m == n ? s
                           : (int64_t)(rng_bits_at(o->seed, GC_STREAM_SAMPLE,
                                                   (uint64_t)s) % (uint64_t)n);
        const float x0 = prm->x[i];
        const float xp = x0 + (float)o->eps, xm = x0 - (float)o->eps;
        prm->x[i] = xp;
        p->forward(p->ctx);
        const double lp = gc_weighted_sum(p);
        prm->x[i] = xm;
        p->forward(p->ctx);
        const double lm = gc_weighted_sum(p);
        prm->x[i] = x0;
        /* divide by the step fp32 actually took, not by 2*eps: x +- eps is
         * rounded, and for |x| >> eps the difference matters */
        const double fd = (lp - lm) / ((double)xp - (double)xm);
        const double a = analytic[i];
        const double err = fabs(a - fd);
        const double bound = o->abs_tol + o->rel_tol * fmax(fabs(a), fabs(fd));
        const double ratio = err / bound;
        if (!(ratio <= 1.0))
            failed++;
        if (!(ratio <= worst_ratio)) {
            worst_ratio = isnan(ratio) ? INFINITY : ratio;
            worst_at = i;
            worst_a = a;
            worst_fd = fd;
        }
    }
    p->forward(p->ctx); /* leave outputs consistent with the restored inputs */
    int pass = ok(failed == 0,
                  "%s: d%s matches central differences (%lld of %lld entries, eps %g, "
                  "rel %g, abs %g)",
                  p->op, prm->name, (long long)m, (long long)n, o->eps, o->rel_tol,
                  o->abs_tol);
    if (worst_at >= 0)
        diag("%s d%s worst entry %lld: analytic %.9g numeric %.9g (err/bound %.3g)%s",
             p->op, prm->name, (long long)worst_at, worst_a, worst_fd, worst_ratio,
             failed ? "" : " ok");
    if (failed)
        diag("%lld entries out of tolerance", (long long)failed);
    return pass;
}

int gradcheck(const struct gc_problem *p, const struct gc_opts *o)
{
    int fails = 0;
    const char *bad = NULL;

    /* 1. NaN check of the forward before anything else */
    p->forward(p->ctx);
    if (!ok(outputs_finite(p, &bad), "%s: forward outputs are finite", p->op)) {
        diag("non-finite values in output %s; gradients not checked", bad);
        return 1;
    }

    /* 2. weights dL/dy, then one backward into zeroed gradients */
    for (int k = 0; k < p->n_outputs; k++) {
        const struct gc_output *out = &p->outputs[k];
        rng_uniform(out->dy, -1.0f, 1.0f, o->seed, GC_STREAM_WEIGHTS + (uint64_t)k, 0, out->n);
    }
    float **g1 = kd_calloc((size_t)(p->n_params ? p->n_params : 1), sizeof(float *));
    for (int j = 0; j < p->n_params; j++)
        memset(p->params[j].grad, 0, (size_t)p->params[j].n * sizeof(float));
    p->backward(p->ctx);
    int finite = 1;
    for (int j = 0; j < p->n_params; j++) {
        const struct gc_param *prm = &p->params[j];
        finite &= gc_all_finite(prm->grad, prm->n);
        g1[j] = kd_malloc((size_t)(prm->n ? prm->n : 1) * sizeof(float));
        memcpy(g1[j], prm->grad, (size_t)prm->n * sizeof(float));
    }
    if (!ok(finite, "%s: gradients are finite", p->op))
        fails++;

    /* 3. backward accumulates: a second call doubles every gradient. Not
     * bitwise: BLAS may add the product onto C in another order than onto
     * zero, so 1e-6 of the largest gradient is allowed. */
    if (o->check_accumulate) {
        p->backward(p->ctx);
        double worst = 0.0;
        for (int j = 0; j < p->n_params; j++) {
            const struct gc_param *prm = &p->params[j];
            double scale = 0.0;
            for (int64_t i = 0; i < prm->n; i++)
                scale = fmax(scale, fabs((double)g1[j][i]));
            for (int64_t i = 0; i < prm->n; i++) {
                double e = fabs((double)prm->grad[i] - 2.0 * g1[j][i]) /
                           (1e-6 * scale + 1e-30);
                worst = isnan(e) ? INFINITY : fmax(worst, e);
            }
        }
        if (!ok(worst <= 1.0, "%s: a second backward doubles the gradients "
                              "(accumulates; err %.3g of 1e-6*max|g|)", p->op, worst))
            fails++;
    }

    /* 4. finite differences, parameter by parameter */
    for (int j = 0; j < p->n_params; j++)
        if (!check_param(p, o, &p->params[j], g1[j]))
            fails++;

    for (int j = 0; j < p->n_params; j++)
        free(g1[j]);
    free(g1);
    return fails;
}
