/* tap.c: see tap.h. */
#include "tap.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int n_run, n_failed, planned = -1;

void plan(int n)
{
    planned = n;
    printf("1..%d\n", n);
}

static int vok(int cond, const char *fmt, va_list ap)
{
    n_run++;
    if (!cond)
        n_failed++;
    printf("%sok %d - ", cond ? "" : "not ", n_run);
    vprintf(fmt, ap);
    printf("\n");
    fflush(stdout);
    return cond;
}

int ok(int cond, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vok(cond, fmt, ap);
    va_end(ap);
    return cond;
}

int ok_near(double got, double want, double rel_tol, double abs_tol, const char *fmt, ...)
{
    int cond = isfinite(got) && fabs(got - want) <= abs_tol + rel_tol * fabs(want);
    va_list ap;
    va_start(ap, fmt);
    vok(cond, fmt, ap);
    va_end(ap);
    if (!cond)
        diag("got %.9g, want %.9g (rel tol %g, abs tol %g)", got, want, rel_tol, abs_tol);
    return cond;
}

int ok_str(const char *got, const char *want, const char *fmt, ...)
{
    int cond = got && want && strcmp(got, want) == 0;
    va_list ap;
    va_start(ap, fmt);
    vok(cond, fmt, ap);
    va_end(ap);
    if (!cond) {
        diag("got:  %s", got ? got : "(null)");
        diag("want: %s", want ? want : "(null)");
    }
    return cond;
}

void diag(const char *fmt, ...)
{
    char buf[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    /* One "# " per line so multi-line messages stay TAP comments. */
    for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n"))
        printf("# %s\n", line);
    fflush(stdout);
}

void skip(int n, const char *why)
{
    for (int i = 0; i < n; i++) {
        n_run++;
        printf("ok %d # SKIP %s\n", n_run, why);
    }
}

_Noreturn void skip_all(const char *why)
{
    printf("1..0 # SKIP %s\n", why);
    fflush(stdout);
    exit(0);
}

_Noreturn void bail_out(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("Bail out! ");
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    fflush(stdout);
    exit(1);
}

int done_testing(void)
{
    if (planned < 0)
        printf("1..%d\n", n_run);
    else if (planned != n_run)
        printf("# planned %d tests but ran %d\n", planned, n_run);
    fflush(stdout);
    return (n_failed || (planned >= 0 && planned != n_run)) ? 1 : 0;
}

double max_rel_err(const float *got, const float *want, size_t n, double floor,
                   size_t *where)
{
    double worst = 0.0;
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - (double)want[i]);
        double s = fabs((double)want[i]);
        double e = d / (s > floor ? s : floor);
        if (!(e <= worst)) { /* also catches NaN */
            worst = isnan(e) ? INFINITY : e;
            at = i;
        }
    }
    if (where)
        *where = at;
    return worst;
}
