/* layout.c: rank roles, contiguous cost partition and data shards. */
#include "kd/parallel/layout.h"
#include "kd/core/error.h"

#include <float.h>
#include <stdio.h>
#include <stdlib.h>

int layout_plan(struct rank_layout *l, int world, int pipeline_stages, char *err,
                size_t errlen)
{
    l->world = world;
    l->pipeline_stages = pipeline_stages;
    l->replicas = 0;
    if (world < 1 || pipeline_stages < 1) {
        snprintf(err, errlen, "need at least 1 rank and 1 pipeline stage, got %d and %d",
                 world, pipeline_stages);
        return -1;
    }
    if (world % pipeline_stages) {
        snprintf(err, errlen, "%d rank%s cannot be split into pipelines of "
                 "teacher.pipeline_stages = %d (%d is not a multiple of %d)",
                 world, world == 1 ? "" : "s", pipeline_stages, world, pipeline_stages);
        return -1;
    }
    l->replicas = world / pipeline_stages;
    return 0;
}

int layout_online(struct online_layout *l, int world, int teacher_ranks, int S, char *err,
                  size_t errlen)
{
    l->world = world;
    l->teachers = teacher_ranks;
    l->students = world - teacher_ranks;
    l->S = S;
    l->R = S > 0 ? teacher_ranks / S : 0;
    if (S < 1 || teacher_ranks < S || teacher_ranks % S) {
        snprintf(err, errlen, "teacher_ranks = %d must be a positive multiple of "
                 "teacher.pipeline_stages = %d", teacher_ranks, S);
        return -1;
    }
    if (teacher_ranks >= world) {
        snprintf(err, errlen, "teacher_ranks = %d, which leaves no student rank out of %d",
                 teacher_ranks, world);
        return -1;
    }
    if (l->R > l->students) {
        snprintf(err, errlen, "teacher_ranks = %d makes %d teacher pipelines of %d stage%s "
                 "for %d student rank%s: a pipeline would feed no student (use at most %d "
                 "teacher ranks)", teacher_ranks, l->R, S, S == 1 ? "" : "s", l->students,
                 l->students == 1 ? "" : "s", l->students * S);
        return -1;
    }
    return 0;
}

void layout_teacher_role(const struct rank_layout *l, int rank, int *replica, int *stage)
{
    *replica = rank / l->pipeline_stages;
    *stage = rank % l->pipeline_stages;
}

void layout_partition(const double *cost, int n, int parts, int *first)
{
    KD_ASSERT(parts >= 1 && parts <= n, "partition of %d items into %d parts", n, parts);
    /* best[p][i]: minimal max-cost of splitting items [0, i) into p runs.
     * n is the number of layers (<= a few hundred), so O(parts * n^2) is
     * nothing next to one training step. */
    double *prefix = kd_calloc((size_t)n + 1, sizeof *prefix);
    for (int i = 0; i < n; i++)
        prefix[i + 1] = prefix[i] + cost[i];
    size_t w = (size_t)n + 1;
    double *best = kd_malloc(((size_t)parts + 1) * w * sizeof *best);
    int *cut = kd_malloc(((size_t)parts + 1) * w * sizeof *cut);
    for (size_t i = 0; i < ((size_t)parts + 1) * w; i++)
        best[i] = DBL_MAX;
    best[0] = 0.0;
    for (int p = 1; p <= parts; p++)
        for (int i = p; i <= n; i++)
            for (int j = p - 1; j < i; j++) {
                double prev = best[(size_t)(p - 1) * w + (size_t)j];
                if (prev == DBL_MAX)
                    continue;
                double run = prefix[i] - prefix[j];
                double m = prev > run ? prev : run;
                if (m < best[(size_t)p * w + (size_t)i]) {
                    best[(size_t)p * w + (size_t)i] = m;
                    cut[(size_t)p * w + (size_t)i] = j;
                }
            }
    first[parts] = n;
    for (int p = parts, i = n; p >= 1; p--) {
        i = cut[(size_t)p * w + (size_t)i];
        first[p - 1] = i;
    }
    free(prefix);
    free(best);
    free(cut);
}

void layout_shard(long long n, int index, int count, long long *begin, long long *end)
{
    long long base = n / count, extra = n % count;
    *begin = (long long)index * base + (index < extra ? index : extra);
    *end = *begin + base + (index < extra ? 1 : 0);
}
