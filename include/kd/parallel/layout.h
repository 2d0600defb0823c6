/* layout.h: which rank does what (parallel layer; pure arithmetic, no MPI
 * calls, so --dry-run can plan a 64-rank job in one process).
 *
 * Teacher stages run S pipeline stages x R replicas (W = R*S): rank r is
 * replica r / S, stage r % S, so a replica's stages are neighbours (one node
 * holds a whole pipeline when S divides the ranks per node). Student stages
 * are data-parallel over all W ranks; in online mode the first W - T ranks
 * train the student and the last T run teacher pipelines (struct
 * online_layout). */
#ifndef KD_PARALLEL_LAYOUT_H
#define KD_PARALLEL_LAYOUT_H

#include <stddef.h>

struct rank_layout {
    int world;           /* W */
    int pipeline_stages; /* S */
    int replicas;        /* R = W / S */
};

/* Checks that the numbers fit; the message names them. */
int layout_plan(struct rank_layout *l, int world, int pipeline_stages, char *err,
                size_t errlen);
void layout_teacher_role(const struct rank_layout *l, int rank, int *replica, int *stage);

/* Online distill stages: of W ranks the first D = W - teacher_ranks train
 * the student (so rank 0, which logs and writes, is a student) and the
 * other teacher_ranks run R = teacher_ranks / S teacher pipelines of S
 * stages; student d is fed by pipeline d % R. */
#define LAYOUT_ONLINE_DEPTH 2 /* steps in flight per student rank */
struct online_layout {
    int world, students, teachers; /* W, D, W - D */
    int S, R;                      /* pipeline stages and teacher pipelines */
};
/* Checks that the numbers fit (teacher_ranks a positive multiple of S,
 * at least one student rank, no pipeline without a student); the message
 * names them. */
int layout_online(struct online_layout *l, int world, int teacher_ranks, int S, char *err,
                  size_t errlen);

/* Splits n items with the given costs into `parts` contiguous runs that
 * minimise the largest run's cost; first[p] is the first item of run p
 * (first[parts] = n). Every run gets at least one item (parts <= n). */
void layout_partition(const double *cost, int n, int parts, int *first);

/* Examples [begin, end) of shard `index` of `count` over n examples: sizes
 * differ by at most one, no overlap, nothing lost. */
void layout_shard(long long n, int index, int count, long long *begin, long long *end);

#endif
