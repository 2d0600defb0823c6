/* p_comm.c: collective helpers of parallel/comm.c on 1, 2 and 4 ranks:
 * error agreement, broadcast, and that data shards computed independently on
 * every rank tile the data exactly (no overlap, nothing lost). Exit status is
 * the verdict; rank 0 prints TAP. */
#include "kd/parallel/comm.h"
#include "kd/parallel/layout.h"
#include "../tap.h"

#include <string.h>

int main(int argc, char **argv)
{
    struct comm c;
    comm_init(&c, &argc, &argv);
    int fails = 0;

    int agreed = comm_agree_max(&c, c.rank == c.size - 1 ? 3 : 0);
    fails += agreed != 3;
    fails += comm_agree_max(&c, 0) != 0;

    char buf[64] = "";
    if (c.rank == 0)
        strcpy(buf, "broadcast from rank 0");
    comm_bcast_bytes(&c, buf, sizeof buf, 0);
    fails += strcmp(buf, "broadcast from rank 0") != 0;

    /* every rank marks its shard of 1000 examples; the sum must be 1 each */
    enum { N = 1003 };
    int mark[N] = {0}, total[N];
    long long b, e;
    layout_shard(N, c.rank, c.size, &b, &e);
    for (long long i = b; i < e; i++)
        mark[i] = 1;
    MPI_CHECK(MPI_Allreduce(mark, total, N, MPI_INT, MPI_SUM, c.world));
    int tiled = 1;
    for (int i = 0; i < N; i++)
        tiled &= total[i] == 1;
    fails += !tiled;

    int all_fails = comm_agree_max(&c, fails);
    if (c.rank == 0) {
        ok(agreed == 3, "agreement returns the worst code of %d ranks", c.size);
        ok(strcmp(buf, "broadcast from rank 0") == 0, "broadcast reaches rank 0 too");
        ok(tiled, "shards of %d examples over %d ranks tile the data", N, c.size);
        ok(all_fails == 0, "every rank passed its own checks");
    }
    comm_finalize(&c);
    return c.rank == 0 ? done_testing() : (all_fails != 0);
}
