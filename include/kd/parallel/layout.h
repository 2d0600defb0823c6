/* layout.h: which rank does what (parallel layer; pure arithmetic, no MPI
 * calls, so --dry-run can plan a 64-rank job in one process).
 *
 * Teacher stages run S pipeline stages x R replicas (W = R*S): rank r is
 * replica r / S, stage r % S, so a replica's stages are neighbours (one node
 * holds a whole pipeline when S divides the ranks per node). Student stages
 * are data-parallel over all W ranks; in online mode the first T ranks run
 * teacher pipelines and the other W - T train the student. */
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

/* Splits n items with the given costs into `parts` contiguous runs that
 * minimise the largest run's cost; first[p] is the first item of run p
 * (first[parts] = n). Every run gets at least one item (parts <= n). */
void layout_partition(const double *cost, int n, int parts, int *first);

/* Examples [begin, end) of shard `index` of `count` over n examples: sizes
 * differ by at most one, no overlap, nothing lost. */
void layout_shard(long long n, int index, int count, long long *begin, long long *end);

#endif
