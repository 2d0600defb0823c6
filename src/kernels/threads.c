/* threads.c: team sizes, work splits and the contention check for the
 * kernels' OpenMP loops (kernels layer). See threads.h for the policy. */
#include "kd/kernels/threads.h"

#include <fcntl.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

/* 0 until the first threads_max() call, then the budget. Two threads that
 * race on the first call compute the same value, so a relaxed store is
 * enough. */
static atomic_int g_budget;

/* OPENBLAS_NUM_THREADS as a positive count, or 0 if unset or malformed. */
static int openblas_env_threads(void)
{
    const char *s = getenv("OPENBLAS_NUM_THREADS");
    if (!s || !*s)
        return 0;
    char *end;
    long n = strtol(s, &end, 10);
    return *end == '\0' && n >= 1 && n <= 4096 ? (int)n : 0;
}

int threads_max(void)
{
    int n = atomic_load_explicit(&g_budget, memory_order_relaxed);
    if (n > 0)
        return n;
#ifdef _OPENMP
    n = omp_get_max_threads();
    /* only the BLAS was limited: follow it rather than OpenMP's default of
     * one thread per core (unless the program chose a count itself) */
    const int blas = openblas_env_threads();
    if (!getenv("OMP_NUM_THREADS") && blas > 0 && blas < n && n == omp_get_num_procs() &&
        !omp_in_parallel()) {
        omp_set_num_threads(blas);
        n = blas;
    }
    if (n < 1)
        n = 1;
#else
    (void)openblas_env_threads;
    n = 1;
#endif
    atomic_store_explicit(&g_budget, n, memory_order_relaxed);
    return n;
}

int threads_now(void)
{
#ifdef _OPENMP
    if (omp_in_parallel())
        return 1;
    const int n = omp_get_max_threads(), budget = threads_max();
    return n < budget ? (n < 1 ? 1 : n) : budget;
#else
    return 1;
#endif
}

/* ---- contention check ----------------------------------------------------
 * With more runnable threads than cores, a team's threads are descheduled
 * at random; every region then waits for its slowest thread, and libgomp's
 * default spin-waiting burns the time slices the others need. Measured on
 * the 2-core development machine under a load of 4: BERT-mini training at
 * 660-680 tokens/s on a team of 2 that ignored the load, against 2,600-2,800
 * on one thread (and for the same team with OMP_WAIT_POLICY=passive). So the
 * kernels watch for it and run on one thread while it lasts.
 * Signal: the share of wall time the calling thread spent runnable but not
 * running (Linux's run delay, /proc/thread-self/schedstat), sampled every
 * THREADS_CHECK_S while the team is in use. Alone on its cores a thread
 * waits well under 1%; the measurement above gave 33% on one thread and 60%
 * on two. Above THREADS_WAIT_MAX the kernels stay on one thread for a hold
 * time, then try the team again. One thread running alone says nothing
 * about the other cores, so the hold doubles (THREADS_HOLD_MIN to
 * THREADS_HOLD_MAX) each time the team is found contended again soon after
 * a retry, and resets once the team has run free for THREADS_FREE_S: with
 * one other busy process on two cores the team is tried for about 0.1 s
 * every 2 s. Without the file (another OS, no scheduler statistics) the check is
 * off. Results do not depend on the team size (threads.h), so this changes
 * timings only. The state is touched by the thread that opens regions
 * (threads_team returns before it inside a region); relaxed atomics keep a
 * program that calls kernels from several threads well defined. */
#define THREADS_CHECK_S 0.05
#define THREADS_WAIT_MAX 0.10
#define THREADS_HOLD_MIN 0.1
#define THREADS_HOLD_MAX 2.0
#define THREADS_FREE_S 1.0

static atomic_int g_check = 1;           /* threads_set_contention_check */
static atomic_int g_contended;           /* on one thread until g_hold_until */
static _Atomic double g_hold_until;      /* monotonic seconds */
static _Atomic double g_hold = THREADS_HOLD_MIN;
static _Atomic double g_free_since = -1.0; /* start of the current free run */
static _Atomic double g_last_t = -1.0, g_last_wait; /* previous sample, seconds */
static atomic_long g_samples, g_contended_samples;

static double seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Seconds the calling thread has waited on a run queue, or -1 if unknown.
 * The file holds "run_ns wait_ns timeslices". */
static double run_delay(void)
{
    char buf[128];
    const int fd = open("/proc/thread-self/schedstat", O_RDONLY);
    if (fd < 0)
        return -1.0;
    const ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return -1.0;
    buf[n] = '\0';
    char *p = buf, *end;
    strtoull(p, &end, 10); /* run time */
    if (end == p)
        return -1.0;
    p = end;
    const unsigned long long wait_ns = strtoull(p, &end, 10);
    return end == p ? -1.0 : 1e-9 * (double)wait_ns;
}

#define LOAD(x) atomic_load_explicit(&(x), memory_order_relaxed)
#define STORE(x, v) atomic_store_explicit(&(x), (v), memory_order_relaxed)

/* 1 while the kernels should stay on one thread. */
static int contended(void)
{
    if (!LOAD(g_check))
        return 0;
    const double t = seconds();
    if (LOAD(g_contended)) {
        if (t < LOAD(g_hold_until))
            return 1;
        /* try the team again, measuring from now */
        STORE(g_contended, 0);
        STORE(g_last_t, -1.0);
        STORE(g_free_since, t);
    }
    const double t0 = LOAD(g_last_t);
    if (t0 >= 0.0 && t - t0 < THREADS_CHECK_S)
        return 0;
    const double w = run_delay();
    if (w < 0.0) { /* no scheduler statistics: never contended */
        STORE(g_check, 0);
        return 0;
    }
    const double w0 = LOAD(g_last_wait);
    STORE(g_last_t, t);
    STORE(g_last_wait, w);
    if (t0 < 0.0)
        return 0; /* first sample of a run: nothing to compare with yet */
    atomic_fetch_add_explicit(&g_samples, 1, memory_order_relaxed);
    double free_since = LOAD(g_free_since);
    if (free_since < 0.0)
        STORE(g_free_since, free_since = t0);
    if ((w - w0) / (t - t0) <= THREADS_WAIT_MAX) {
        if (t - free_since >= THREADS_FREE_S)
            STORE(g_hold, THREADS_HOLD_MIN); /* a long free run: forget the past */
        return 0;
    }
    atomic_fetch_add_explicit(&g_contended_samples, 1, memory_order_relaxed);
    const double hold = LOAD(g_hold);
    STORE(g_contended, 1);
    STORE(g_hold_until, t + hold);
    STORE(g_hold, 2.0 * hold < THREADS_HOLD_MAX ? 2.0 * hold : THREADS_HOLD_MAX);
    return 1;
}

void threads_set_contention_check(int on)
{
    STORE(g_check, on != 0);
    STORE(g_contended, 0);
    STORE(g_hold, THREADS_HOLD_MIN);
    STORE(g_last_t, -1.0); /* sample afresh */
    STORE(g_free_since, -1.0);
}

void threads_contention_stats(long *samples, long *contended_samples)
{
    *samples = LOAD(g_samples);
    *contended_samples = LOAD(g_contended_samples);
}

int threads_team(int64_t work, int64_t grain)
{
    int64_t n = threads_now();
    const int64_t by_work = grain > 0 ? work / grain : work;
    if (n > by_work)
        n = by_work;
    if (n > 1 && contended())
        n = 1;
    return n < 1 ? 1 : (int)n;
}

int threads_id(void)
{
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

int threads_count(void)
{
#ifdef _OPENMP
    return omp_get_num_threads();
#else
    return 1;
#endif
}

void threads_split(int64_t n, int parts, int part, int64_t align, int64_t *lo, int64_t *hi)
{
    if (parts < 1)
        parts = 1;
    if (align < 1)
        align = 1;
    /* whole aligned units, spread as evenly as possible; the last piece also
     * takes the remainder below one unit */
    const int64_t units = n / align, base = units / parts, extra = units % parts;
    const int64_t before = part * base + (part < extra ? part : extra);
    const int64_t mine = base + (part < extra ? 1 : 0);
    *lo = before * align;
    *hi = part == parts - 1 ? n : (before + mine) * align;
}
