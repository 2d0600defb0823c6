/* job_errors.c: the list of problems found in a job file. */
#include "kd/job/job.h"
#include "kd/core/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

void job_errors_add(struct job_errors *e, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (e->n == e->cap) {
        e->cap = e->cap ? 2 * e->cap : 16;
        e->msgs = kd_realloc(e->msgs, (size_t)e->cap * sizeof *e->msgs);
    }
    e->msgs[e->n++] = kd_strdup(buf);
}

void job_errors_free(struct job_errors *e)
{
    for (int i = 0; i < e->n; i++)
        free(e->msgs[i]);
    free(e->msgs);
    e->msgs = NULL;
    e->n = e->cap = 0;
}
