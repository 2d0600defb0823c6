/* log.c: levelled, rank-aware logging and progress lines (core layer). */
#include "kd/core/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>

static struct {
    int rank, nranks;
    enum log_level level;
    int verbose, timestamps;
    double t0;
} lg = {0, 1, LOG_LEVEL_INFO, 0, 1, -1.0};

double wall_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void log_init(int rank, int nranks)
{
    lg.rank = rank;
    lg.nranks = nranks;
    lg.t0 = wall_seconds();
}

void log_set_level(enum log_level level) { lg.level = level; }
void log_set_verbose(int v) { lg.verbose = v; }
void log_set_timestamps(int on) { lg.timestamps = on; }
enum log_level log_get_level(void) { return lg.level; }
int log_rank(void) { return lg.rank; }
int log_nranks(void) { return lg.nranks; }

double log_elapsed(void)
{
    if (lg.t0 < 0)
        lg.t0 = wall_seconds();
    return wall_seconds() - lg.t0;
}

void log_flush(void)
{
    fflush(stdout);
    fflush(stderr);
}

void log_msg(enum log_level level, int rank0_only, const char *fmt, ...)
{
    static const char *const tag[] = {"error: ", "warning: ", "", "debug: "};
    if (level > lg.level || (rank0_only && lg.rank != 0 && !lg.verbose))
        return;
    FILE *out = level <= LOG_LEVEL_WARN ? stderr : stdout;
    char prefix[64] = "";
    int n = 0;
    if (lg.timestamps)
        n += snprintf(prefix + n, sizeof prefix - (size_t)n, "[%8.2fs] ", log_elapsed());
    if (lg.verbose || (!rank0_only && lg.nranks > 1 && level <= LOG_LEVEL_WARN))
        snprintf(prefix + n, sizeof prefix - (size_t)n, "[rank %d] ", lg.rank);
    char body[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(body, sizeof body, fmt, ap);
    va_end(ap);
    fprintf(out, "%s%s%s\n", prefix, tag[level], body);
    if (level <= LOG_LEVEL_WARN)
        fflush(out);
}

void progress_begin(struct progress *p, const char *what, const char *unit,
                    int64_t total, double every_s)
{
    p->what = what;
    p->unit = unit;
    p->total = total;
    p->t_start = wall_seconds();
    p->t_last = p->t_start;
    p->every_s = every_s;
}

static void format_duration(char *buf, size_t n, double s)
{
    if (s < 0 || s > 1e7)
        snprintf(buf, n, "?");
    else if (s < 60)
        snprintf(buf, n, "%.0fs", s);
    else if (s < 3600)
        snprintf(buf, n, "%dm%02ds", (int)s / 60, (int)s % 60);
    else
        snprintf(buf, n, "%dh%02dm", (int)s / 3600, ((int)s % 3600) / 60);
}

void progress_update(struct progress *p, int64_t done, const char *extra)
{
    double now = wall_seconds();
    int finished = p->total > 0 && done >= p->total;
    if (!finished && now - p->t_last < p->every_s)
        return;
    p->t_last = now;
    double el = now - p->t_start;
    double rate = el > 0 ? (double)done / el : 0.0;
    char eta[32] = "", spent[32];
    format_duration(spent, sizeof spent, el);
    if (p->total > 0 && rate > 0 && !finished) {
        char d[24];
        format_duration(d, sizeof d, (double)(p->total - done) / rate);
        snprintf(eta, sizeof eta, ", ETA %s", d);
    }
    if (p->total > 0)
        log_info0("%s: %lld/%lld %s (%.1f%%), %.1f %s/s, %s%s%s%s", p->what,
                  (long long)done, (long long)p->total, p->unit,
                  100.0 * (double)done / (double)p->total, rate, p->unit, spent, eta,
                  extra ? ", " : "", extra ? extra : "");
    else
        log_info0("%s: %lld %s, %.1f %s/s, %s%s%s", p->what, (long long)done, p->unit,
                  rate, p->unit, spent, extra ? ", " : "", extra ? extra : "");
}
