/* log.h: levelled logging with rank-0 discipline (core layer, no MPI).
 *
 * log_*0 print on rank 0 only; the others print on every rank. With
 * log_set_verbose(1) every line carries a "[rank N]" prefix. Timestamps are
 * seconds since log_init. Errors and warnings go to stderr, the rest to
 * stdout, so a batch system's output and error files stay readable. */
#ifndef KD_CORE_LOG_H
#define KD_CORE_LOG_H

#include <stdint.h>

enum log_level {
    LOG_LEVEL_ERROR = 0,
    LOG_LEVEL_WARN = 1,
    LOG_LEVEL_INFO = 2,
    LOG_LEVEL_DEBUG = 3
};

void log_init(int rank, int nranks);
void log_set_level(enum log_level level);
void log_set_verbose(int all_ranks_with_prefix);
void log_set_timestamps(int on);
enum log_level log_get_level(void);
int log_rank(void);
int log_nranks(void);
double log_elapsed(void); /* seconds since log_init */
void log_flush(void);

void log_msg(enum log_level level, int rank0_only, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define log_error(...) log_msg(LOG_LEVEL_ERROR, 0, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LEVEL_WARN, 0, __VA_ARGS__)
#define log_warn0(...) log_msg(LOG_LEVEL_WARN, 1, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LEVEL_INFO, 0, __VA_ARGS__)
#define log_info0(...) log_msg(LOG_LEVEL_INFO, 1, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LEVEL_DEBUG, 0, __VA_ARGS__)

/* Progress lines for long loops: at most one line per `every_s` seconds,
 * with count, rate and ETA; rank 0 only. */
struct progress {
    const char *what;  /* e.g. "extract" */
    const char *unit;  /* e.g. "examples" */
    int64_t total;     /* 0 if unknown */
    double t_start;
    double t_last;
    double every_s;
};

void progress_begin(struct progress *p, const char *what, const char *unit,
                    int64_t total, double every_s);
/* Prints when due (or when done == total). `extra` may be NULL. */
void progress_update(struct progress *p, int64_t done, const char *extra);

double wall_seconds(void); /* monotonic clock */

#endif
