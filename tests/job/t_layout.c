/* t_layout.c: rank layout arithmetic: pipeline roles, the contiguous cost
 * partition (checked against brute force), and data shards (no overlap, no
 * loss, balanced). */
#include "kd/parallel/layout.h"
#include "../tap.h"

#include <string.h>

/* Brute force: best max-cost over all ways to cut n items into p runs. */
static double brute(const double *cost, int n, int p, int start)
{
    if (p == 1) {
        double s = 0;
        for (int i = start; i < n; i++)
            s += cost[i];
        return s;
    }
    double best = 1e300, run = 0;
    for (int end = start + 1; end <= n - (p - 1); end++) {
        run += cost[end - 1];
        double rest = brute(cost, n, p - 1, end);
        double m = run > rest ? run : rest;
        if (m < best)
            best = m;
    }
    return best;
}

int main(void)
{
    struct rank_layout l;
    char err[256];
    ok(layout_plan(&l, 64, 4, err, sizeof err) == 0 && l.replicas == 16, "64 ranks = 16 x 4");
    ok(layout_plan(&l, 6, 4, err, sizeof err) == -1, "6 ranks do not split into 4 stages");
    ok_str(err, "6 ranks cannot be split into pipelines of teacher.pipeline_stages = 4 "
                "(6 is not a multiple of 4)", "the message names the numbers");
    layout_plan(&l, 8, 2, err, sizeof err);
    int rep, st;
    layout_teacher_role(&l, 5, &rep, &st);
    ok(rep == 2 && st == 1, "rank 5 of 4x2 is replica 2, stage 1");

    /* partition: compare with brute force on pseudo-random costs */
    unsigned seed = 12345;
    int all_ok = 1;
    for (int trial = 0; trial < 200; trial++) {
        int n = 1 + (int)(seed % 9);
        seed = seed * 1103515245u + 12345u;
        int p = 1 + (int)(seed % (unsigned)n);
        seed = seed * 1103515245u + 12345u;
        double cost[16];
        for (int i = 0; i < n; i++) {
            seed = seed * 1103515245u + 12345u;
            cost[i] = 0.1 + (double)(seed % 1000) / 100.0;
        }
        int first[17];
        layout_partition(cost, n, p, first);
        double worst = 0;
        int contiguous = first[0] == 0 && first[p] == n;
        for (int q = 0; q < p; q++) {
            contiguous &= first[q + 1] > first[q];
            double s = 0;
            for (int i = first[q]; i < first[q + 1]; i++)
                s += cost[i];
            worst = s > worst ? s : worst;
        }
        double want = brute(cost, n, p, 0);
        if (!contiguous || worst > want + 1e-9) {
            all_ok = 0;
            diag("trial %d: n=%d p=%d got max %g, optimum %g", trial, n, p, worst, want);
        }
    }
    ok(all_ok, "partition is contiguous, non-empty and optimal on 200 random cases");
    double even[25];
    for (int i = 0; i < 25; i++)
        even[i] = i == 0 ? 0.05 : 1.0;
    int first[5];
    layout_partition(even, 25, 4, first);
    ok(first[1] == 7 && first[2] == 13 && first[3] == 19,
       "24 equal layers + cheap embeddings over 4 stages: 6 layers each");

    /* shards */
    int shards_ok = 1;
    for (long long n = 0; n < 40; n++)
        for (int c = 1; c <= 7; c++) {
            long long expect_begin = 0;
            for (int i = 0; i < c; i++) {
                long long b, e;
                layout_shard(n, i, c, &b, &e);
                long long size = e - b;
                if (b != expect_begin || size < n / c || size > n / c + 1)
                    shards_ok = 0;
                expect_begin = e;
            }
            if (expect_begin != n)
                shards_ok = 0;
        }
    ok(shards_ok, "shards tile [0, n) in order, sizes differ by at most one");
    return done_testing();
}
