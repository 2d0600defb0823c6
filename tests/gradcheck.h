/* gradcheck.h: finite-difference gradient checker shared by the kernel,
 * model and distillation-loss tests (STYLE.md, verification ladder rung
 * ii/iii).
 *
 * The scalar being differentiated is a random-weighted sum of every output,
 * accumulated in double:
 *     L = sum_k sum_i w_ki * y_ki,    w_ki ~ U(-1, 1) (seeded)
 * so dL/dy = w is what the op's backward receives, and every output element
 * takes part with its own weight (a plain sum would hide errors that cancel).
 *
 * gradcheck() then, emitting one TAP point per item:
 *   1. runs the forward and checks every output is finite (NaN check first),
 *   2. runs the backward once into zeroed gradients and checks they are
 *      finite,
 *   3. optionally runs the backward again and checks the gradients doubled
 *      (the accumulate contract of every backward),
 *   4. for each parameter, compares the analytic gradient with the central
 *      difference (L(x+eps) - L(x-eps)) / (x+eps - (x-eps)) (the actual fp32
 *      step) on all entries, or on max_entries sampled ones; an entry passes
 *      when |analytic - numeric| <= abs_tol + rel_tol * max(|analytic|,
 *      |numeric|). The worst entry is reported either way.
 */
#ifndef KD_TESTS_GRADCHECK_H
#define KD_TESTS_GRADCHECK_H

#include <stddef.h>
#include <stdint.h>

/* A differentiable input or parameter of the op. */
struct gc_param {
    const char *name;
    float *x;     /* (n) values; perturbed and restored during the check */
    float *grad;  /* (n) analytic gradient, accumulated by the backward */
    int64_t n;
};

/* An output of the op. Exactly one of y (fp32) or yd (double, e.g. a loss
 * value) is set. */
struct gc_output {
    const char *name;
    const float *y;   /* (n) or NULL */
    const double *yd; /* (n) or NULL */
    float *dy;        /* (n) upstream gradient: gradcheck writes the weights */
    int64_t n;
};

struct gc_problem {
    const char *op; /* name in the TAP lines */
    void *ctx;
    /* Recomputes every output from the current parameter values. */
    void (*forward)(void *ctx);
    /* Accumulates into every params[i].grad, reading outputs[k].dy. */
    void (*backward)(void *ctx);
    struct gc_output *outputs;
    int n_outputs;
    struct gc_param *params;
    int n_params;
};

struct gc_opts {
    double eps;          /* central-difference step, per op */
    double rel_tol;      /* per op */
    double abs_tol;      /* per op */
    int64_t max_entries; /* checked entries per parameter, sampled when the
                          * parameter is larger; 0 = all entries */
    int check_accumulate; /* 1: also check that a second backward doubles */
    uint64_t seed;       /* weights and sampling */
};

/* Runs the checks above; returns the number of failed TAP points. */
int gradcheck(const struct gc_problem *p, const struct gc_opts *o);

/* L = sum w*y in double for the current outputs and weights (exposed for
 * tests that add their own terms). */
double gc_weighted_sum(const struct gc_problem *p);

/* Test data: x (n) ~ U(lo, hi) from the project's Philox RNG. */
void gc_rand(float *x, int64_t n, float lo, float hi, uint64_t seed);

/* Compares an fp32 result with a double reference: TAP point passes when
 * max_i |got_i - want_i| / max(|want_i|, floor) <= rel_tol; reports the
 * worst entry. */
int gc_check_close(const char *what, const float *got, const double *want, int64_t n,
                   double rel_tol, double floor);

/* 1 if every entry is finite. */
int gc_all_finite(const float *x, int64_t n);

#endif
