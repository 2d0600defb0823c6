/* error.h: the two tiers of errors (core layer; knows nothing of MPI or HDF5).
 *
 * (a) Internal invariants: KD_ASSERT / KD_FATAL print
 *     "rank N: file:line: func: message", flush the logs and call the abort hook
 *     (MPI_Abort once parallel/comm.c has installed it, abort() before that), so
 *     no rank is left waiting in a collective.
 * (b) User input: functions return 0 or -1 and fill a struct kd_err whose text
 *     names the file and line (or dataset, tensor) with "expected ... got ...".
 */
#ifndef KD_CORE_ERROR_H
#define KD_CORE_ERROR_H

#include <stdarg.h>
#include <stddef.h>

#define KD_ERR_MSG_MAX 2048

struct kd_err {
    char msg[KD_ERR_MSG_MAX];
};

/* Formats into e->msg (e may be NULL) and returns -1, so callers can write
 * `return kd_errf(err, "...")`. */
int kd_errf(struct kd_err *e, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
int kd_verrf(struct kd_err *e, const char *fmt, va_list ap);

/* Prefixes an existing message: "context: <old message>". Returns -1. */
int kd_err_prefix(struct kd_err *e, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Called with the exit code after a fatal error has been printed; the hook
 * must not return (parallel/ installs MPI_Abort). */
typedef void (*kd_abort_hook_fn)(int exit_code);
void kd_set_abort_hook(kd_abort_hook_fn hook);

_Noreturn void kd_fatal_at(const char *file, int line, const char *func,
                           const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Ends the whole job with a message and exit code (used once a user error
 * has been agreed collectively, or for a failure only one rank sees). */
_Noreturn void kd_die(int exit_code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define KD_FATAL(...) kd_fatal_at(__FILE__, __LINE__, __func__, __VA_ARGS__)
#define KD_ASSERT(cond, ...)                                                  \
    do {                                                                      \
        if (!(cond))                                                          \
            kd_fatal_at(__FILE__, __LINE__, __func__, "assertion '" #cond     \
                        "' failed: " __VA_ARGS__);                            \
    } while (0)

/* malloc/calloc that end the job with the size on failure. */
void *kd_malloc(size_t bytes);
void *kd_calloc(size_t n, size_t size);
void *kd_realloc(void *p, size_t bytes);
char *kd_strdup(const char *s);

#endif
