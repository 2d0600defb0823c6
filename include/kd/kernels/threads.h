/* threads.h: the kernels' own thread team (kernels layer; knows nothing of
 * models). OpenMP when the build has it (configure's AC_OPENMP), otherwise
 * every function here answers 1 and the pragmas compile to nothing.
 *
 * Who uses threads (with one thread, none of this happens: the engine is
 * the single-threaded one, OpenBLAS on its own threads included):
 *   - large products (QKV, output projections, FFN and their backwards):
 *     gemm() cuts them into one block of rows or columns per thread, each
 *     on single-threaded BLAS (gemm.h);
 *   - attention runs its (batch, head) pairs in parallel, each pair's small
 *     products on single-threaded BLAS (gemm_serial_begin/_end in gemm.h);
 *   - pointwise kernels (GELU, LayerNorm, softmax, dropout, residual adds,
 *     embeddings, the bias sums) split their rows, or their columns when they
 *     reduce over rows.
 *
 * Thread count: omp_get_max_threads(), i.e. OMP_NUM_THREADS or
 * omp_set_num_threads. When OMP_NUM_THREADS is not set but
 * OPENBLAS_NUM_THREADS is (and the program has not chosen a count), the
 * kernels start at that smaller value instead, so a job that only limits
 * the BLAS (one rank per core) is not oversubscribed by the engine's loops.
 *
 * Budget: threads_max() is fixed at its first call (in practice when the
 * first model is sized). Per-thread workspaces (the attention scratch) are
 * sized with it, so raising the thread count later caps the team at the
 * budget rather than overrunning a buffer. A program that sets the count
 * itself does so before building anything.
 *
 * Reproducibility: no kernel's result depends on the team size. Rows and
 * elements are independent; sums over rows (bias, LayerNorm weight and
 * bias, embedding rows) are split by columns, so every column is still
 * summed by one thread in row order, exactly as the serial loop does. One
 * thread runs the same loops as the single-threaded build.
 *
 * Small work stays serial: threads_team() gives each thread at least
 * `grain` units, because waking a team costs microseconds.
 *
 * Contention: on a machine with more runnable threads than cores, a team
 * waits per region for a descheduled thread (libgomp's default
 * spin-waiting makes it worse), and the kernels then run faster on one
 * thread. threads_team() answers 1 for a while (0.1 to 2 s) once the
 * calling thread spends more than 10% of its time waiting for a core (Linux
 * scheduler statistics, sampled every 50 ms; threads.c). This changes
 * timings only. On a shared machine OMP_WAIT_POLICY=passive keeps teams
 * useful under load.
 *
 * BLAS: when the configured team has more than one thread, gemm() runs
 * every product on single-threaded BLAS, whatever the load, so one thread
 * pool serves the whole engine and no product depends on the BLAS's thread
 * count.
 */
#ifndef KD_KERNELS_THREADS_H
#define KD_KERNELS_THREADS_H

#include <stdint.h>

#ifdef _OPENMP
#include <omp.h>
#define KD_PRAGMA(...) _Pragma(#__VA_ARGS__)
/* KD_OMP(atomic) is `#pragma omp atomic` in an OpenMP build and nothing
 * otherwise (no unknown-pragma warnings). */
#define KD_OMP(...) KD_PRAGMA(omp __VA_ARGS__)
/* KD_OMP_TEAM(nt, parallel for schedule(static)) opens a region of nt
 * threads (threads_team's answer), run inline by the calling thread when nt
 * is 1: `#pragma omp parallel for schedule(static) num_threads(nt)
 * if(nt > 1)`. Without OpenMP it only uses nt. */
#define KD_OMP_TEAM(nt, ...) KD_PRAGMA(omp __VA_ARGS__ num_threads(nt) if ((nt) > 1))
#else
#define KD_OMP(...)
#define KD_OMP_TEAM(nt, ...) (void)(nt);
#endif

/* The largest team any kernel uses (>= 1), fixed at the first call. */
int threads_max(void);

/* The configured team for a region opened here: min(omp_get_max_threads(),
 * threads_max()), and 1 inside an active parallel region (kernels never
 * nest teams). Ignores contention: what depends on the configuration, not
 * on the load (gemm's choice of single-threaded BLAS), uses this. */
int threads_now(void);

/* Team size for `work` units of which each thread should get at least
 * `grain`: min(threads_now(), work / grain), at least 1; 1 while the
 * machine is contended (see above). */
int threads_team(int64_t work, int64_t grain);

/* Turns the contention check on (the default) or off; off, threads_team
 * never answers 1 because of load (tests that must exercise the team, and
 * measurements of the team's raw speed). */
void threads_set_contention_check(int on);

/* Samples of the contention check so far, and how many found the machine
 * contended. */
void threads_contention_stats(long *samples, long *contended_samples);

/* Inside a region: this thread's index in [0, team) and the team size;
 * 0 and 1 outside or without OpenMP. */
int threads_id(void);
int threads_count(void);

/* Part `part` of `parts` contiguous pieces of [0, n): [*lo, *hi). Interior
 * boundaries are multiples of `align`, so a split row keeps the KD_VL blocks
 * and scalar tail it has when processed whole. Pieces may be empty. */
void threads_split(int64_t n, int parts, int part, int64_t align, int64_t *lo,
                   int64_t *hi);

#endif
