/* p_store_abort.c: writers that never finish. Each mode writes part of a
 * store at PATH from every rank and then:
 *   kill        the last rank dies (SIGKILL) in the middle; the job ends
 *   exit        every rank returns without store_finish
 *   abort       every rank calls store_abort
 *   incomplete  the last rank never writes its shard; store_finish fails
 * In no mode may a file appear at PATH (tests/io/store_mpi.sh checks; after
 * kill and exit the temporary "<PATH>.tmp.<pid>" is left for inspection).
 * Usage: p_store_abort MODE PATH. */
#include "kd/io/teacher_store.h"
#include "kd/parallel/layout.h"
#include "t_store_fixture.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    struct comm c;
    comm_init(&c, &argc, &argv);
    if (argc != 3) {
        if (c.rank == 0)
            fprintf(stderr, "usage: p_store_abort kill|exit|abort|incomplete PATH\n");
        comm_finalize(&c);
        return 2;
    }
    const char *mode = argv[1], *path = argv[2];
    enum { N = 40, BATCH = 3 };
    int32_t lengths[N];
    struct store_spec s;
    struct kd_err err = {""};
    fx_spec_full(&s, lengths, N, 8, H5_PREC_F16, STORE_TOKENS_ALL, 0);
    store_writer_t *w = NULL;
    if (store_create(&w, path, &c, &s, &fx_prov, &err) < 0) {
        fprintf(stderr, "%s\n", err.msg);
        comm_finalize(&c);
        return 1;
    }
    long long b, e;
    layout_shard(N, c.rank, c.size, &b, &e);
    int last = c.rank == c.size - 1;
    int skip_mine = strcmp(mode, "incomplete") == 0 && last;
    for (int round = 0; round < 4; round++) {
        if (strcmp(mode, "kill") == 0 && round == 2 && last) {
            fprintf(stderr, "rank %d: killing itself in the middle of the store\n", c.rank);
            fflush(stderr);
            kill(getpid(), SIGKILL);
        }
        long long first = b + round * BATCH;
        long long count = skip_mine || first >= e ? 0 : (e - first < BATCH ? e - first : BATCH);
        struct fx_batch fb;
        fx_batch_fill(&fb, &s, count ? first : 0, count);
        int rc = store_write_batch(w, &fb.b, &err);
        fx_batch_free(&fb);
        if (rc < 0) {
            fprintf(stderr, "rank %d: %s\n", c.rank, err.msg);
            store_abort(w);
            comm_finalize(&c);
            return 1;
        }
    }
    int code = 0;
    if (strcmp(mode, "abort") == 0) {
        store_abort(w);
    } else if (strcmp(mode, "incomplete") == 0 || strcmp(mode, "kill") == 0) {
        if (store_finish(w, &err) < 0) {
            if (c.rank == 0)
                fprintf(stderr, "%s\n", err.msg);
            code = 1;
        }
    } /* exit: the writer is simply left behind */
    comm_finalize(&c);
    return code;
}
