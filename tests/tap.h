/* tap.h: a small Test Anything Protocol emitter for the C tests. Run under
 * Automake's tap-driver.sh; every failed point fails `make check`, and the
 * exit status of done_testing() is the test's verdict. */
#ifndef KD_TESTS_TAP_H
#define KD_TESTS_TAP_H

#include <stddef.h>

void plan(int n);
/* Records one test point; returns cond so callers can add diagnostics. */
int ok(int cond, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* |got - want| <= abs_tol + rel_tol * |want|; prints both on failure. */
int ok_near(double got, double want, double rel_tol, double abs_tol,
            const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* Compares two strings; prints both on failure. */
int ok_str(const char *got, const char *want, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void diag(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void skip(int n, const char *why);
_Noreturn void skip_all(const char *why);
_Noreturn void bail_out(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Prints the plan if none was given and returns 0 if all points passed. */
int done_testing(void);

/* Max relative error of got against want, with an absolute floor:
 * max_i |got_i - want_i| / max(|want_i|, floor). *where receives the index. */
double max_rel_err(const float *got, const float *want, size_t n, double floor,
                   size_t *where);

#endif
