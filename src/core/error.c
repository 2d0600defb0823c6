/* error.c: error messages and the fatal path (core layer, no MPI here: the
 * MPI_Abort hook is installed by parallel/comm.c). */
#include "kd/core/error.h"
#include "kd/core/log.h"
#include "kd/cli/exit_codes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static kd_abort_hook_fn abort_hook;

void kd_set_abort_hook(kd_abort_hook_fn hook) { abort_hook = hook; }

int kd_verrf(struct kd_err *e, const char *fmt, va_list ap)
{
    if (e)
        vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    return -1;
}

int kd_errf(struct kd_err *e, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    kd_verrf(e, fmt, ap);
    va_end(ap);
    return -1;
}

int kd_err_prefix(struct kd_err *e, const char *fmt, ...)
{
    if (!e)
        return -1;
    char prefix[512], old[KD_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, e->msg, sizeof old);
    /* prefix, ": ", then as much of the old text as fits */
    size_t lp = strnlen(prefix, sizeof prefix), lo = strnlen(old, sizeof old - 1);
    if (lp + 2 >= sizeof e->msg)
        lp = sizeof e->msg - 3;
    memcpy(e->msg, prefix, lp);
    memcpy(e->msg + lp, ": ", 2);
    size_t room = sizeof e->msg - lp - 3;
    if (lo > room)
        lo = room;
    memcpy(e->msg + lp + 2, old, lo);
    e->msg[lp + 2 + lo] = '\0';
    return -1;
}

static _Noreturn void finish_abort(int code)
{
    log_flush();
    if (abort_hook)
        abort_hook(code);
    exit(code); /* single process, before MPI: nobody can wait on us */
}

_Noreturn void kd_fatal_at(const char *file, int line, const char *func,
                           const char *fmt, ...)
{
    char msg[KD_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "kd_hpc: rank %d: %s:%d: %s: internal error: %s\n",
            log_rank(), file, line, func, msg);
    finish_abort(KD_EXIT_INTERNAL);
}

_Noreturn void kd_die(int exit_code, const char *fmt, ...)
{
    char msg[KD_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (log_nranks() > 1)
        fprintf(stderr, "kd_hpc: error: [rank %d] %s\n", log_rank(), msg);
    else
        fprintf(stderr, "kd_hpc: error: %s\n", msg);
    finish_abort(exit_code);
}

void *kd_malloc(size_t bytes)
{
    void *p = malloc(bytes ? bytes : 1);
    if (!p)
        kd_die(KD_EXIT_RUNTIME, "out of memory allocating %zu bytes", bytes);
    return p;
}

void *kd_calloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p)
        kd_die(KD_EXIT_RUNTIME, "out of memory allocating %zu x %zu bytes", n, size);
    return p;
}

void *kd_realloc(void *p, size_t bytes)
{
    void *q = realloc(p, bytes ? bytes : 1);
    if (!q)
        kd_die(KD_EXIT_RUNTIME, "out of memory reallocating %zu bytes", bytes);
    return q;
}

char *kd_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = kd_malloc(n);
    memcpy(d, s, n);
    return d;
}
