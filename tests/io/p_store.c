/* p_store.c: the teacher store written by every rank of the job (each its
 * layout_shard, in batches; on one node through rank 0 as the one writer,
 * and once more through parallel HDF5 with collective transfers), then
 * read back
 * (a) collectively, each rank checking its own epoch shard of a shuffled
 * order, and (b) by rank 0 alone, checking every dataset. Rank 0 prints
 * TAP and writes one digest line per store (and one for the epoch order)
 * to OUTDIR/digests.txt; tests/io/store_mpi.sh runs this on 1, 2 and 4
 * ranks and requires identical digests and h5diff-identical files.
 * Usage: p_store OUTDIR. Exit status is the verdict. */
#include "kd/io/teacher_store.h"
#include "kd/parallel/layout.h"
#include "t_store_fixture.h"
#include "../tap.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct p_case {
    const char *name;
    enum h5_prec prec;
    enum store_tokens tokens;
    int labels_float;
    int deflate;
    enum store_writer_io io;
};

/* Every rank reads the examples of its epoch shard one by one (in the
 * shuffled order) and compares one hidden and one attention layer. */
static int check_epoch_shard(store_reader_t *r, const struct comm *c, char *why, size_t len)
{
    const struct store_spec *s = store_reader_spec(r);
    int64_t n = s->n_examples, b, e;
    int64_t *idx = kd_malloc((size_t)n * sizeof *idx);
    store_epoch_shard(idx, n, 7, 2, c->rank, c->size, &b, &e);
    size_t per_h = store_example_elems(s, STORE_DS_HIDDEN);
    size_t per_a = store_example_elems(s, STORE_DS_ATTENTION);
    float *got = kd_malloc((per_h + per_a) * sizeof *got);
    float *want = kd_malloc((per_h + per_a) * sizeof *want);
    double tol = s->precision[STORE_DS_HIDDEN] == H5_PREC_F32   ? 0
                 : s->precision[STORE_DS_HIDDEN] == H5_PREC_F16 ? 0x1p-11 : 0x1p-8;
    struct kd_err err = {""};
    int bad = 0;
    for (int64_t i = b; i < e && !bad; i++) {
        int64_t ex = idx[i];
        if (store_read_f32(r, STORE_DS_HIDDEN, 2, ex, 1, got, &err) < 0 ||
            store_read_f32(r, STORE_DS_ATTENTION, 3, ex, 1, got + per_h, &err) < 0) {
            snprintf(why, len, "rank %d: %s", c->rank, err.msg);
            bad = 1;
            break;
        }
        fx_expected(s, STORE_DS_HIDDEN, 2, ex, want);
        fx_expected(s, STORE_DS_ATTENTION, 3, ex, want + per_h);
        for (size_t k = 0; k < per_h + per_a && !bad; k++)
            if (!(fabsf(got[k] - want[k]) <= tol * fabsf(want[k]))) {
                snprintf(why, len, "rank %d: example %lld value %zu: got %.9g, want %.9g",
                         c->rank, (long long)ex, k, got[k], want[k]);
                bad = 1;
            }
    }
    free(idx);
    free(got);
    free(want);
    return bad;
}

int main(int argc, char **argv)
{
    struct comm c;
    comm_init(&c, &argc, &argv);
    if (argc != 2) {
        if (c.rank == 0)
            fprintf(stderr, "usage: p_store OUTDIR\n");
        comm_finalize(&c);
        return 2;
    }
    const char *dir = argv[1];
    /* fp32_mpiio holds what fp32 holds, written the other way; fp16_deflate
     * takes the one writer's path without direct chunk writes */
    const struct p_case cases[] = {
        {"fp32", H5_PREC_F32, STORE_TOKENS_ALL, 0, 0, STORE_WRITER_AUTO},
        {"fp16", H5_PREC_F16, STORE_TOKENS_ALL, 1, 0, STORE_WRITER_AUTO},
        {"bf16_cls", H5_PREC_BF16, STORE_TOKENS_CLS, 0, 0, STORE_WRITER_AUTO},
        {"fp32_mpiio", H5_PREC_F32, STORE_TOKENS_ALL, 0, 0, STORE_WRITER_MPIIO},
        {"fp16_deflate", H5_PREC_F16, STORE_TOKENS_ALL, 1, 1, STORE_WRITER_ONE_WRITER},
    };
    uint64_t digest_of[sizeof cases / sizeof cases[0]] = {0};
    enum { N = 301 };
    int32_t lengths[N];
    FILE *digests = NULL;
    char path[1024], why[KD_ERR_MSG_MAX];
    if (c.rank == 0) {
        snprintf(path, sizeof path, "%s/digests.txt", dir);
        digests = fopen(path, "w");
        if (!digests)
            bail_out("cannot write %s", path);
    }
    int fails = 0;
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        const struct p_case *pc = &cases[k];
        struct store_spec s;
        struct kd_err err = {""};
        fx_spec_full(&s, lengths, N, 24, pc->prec, pc->tokens, pc->labels_float);
        s.hidden_size = 48;
        s.deflate = pc->deflate;
        snprintf(path, sizeof path, "%s/store_%s.h5", dir, pc->name);

        int rc = fx_write_io(path, &c, &s, 5, pc->io, &err);
        if (c.rank == 0 && !ok(rc == 0, "%s: written by %d rank(s) in batches of 5", pc->name,
                               c.size))
            diag("%s", err.msg);
        fails += rc != 0;
        if (rc != 0)
            continue;

        /* (a) collective open, independent reads of each rank's epoch shard */
        store_reader_t *r = NULL;
        int bad = store_open(&r, path, &c, NULL, &err) < 0;
        if (bad)
            snprintf(why, sizeof why, "%s", err.msg);
        else
            bad = check_epoch_shard(r, &c, why, sizeof why);
        if (r)
            store_close(r);
        int all_bad = comm_agree_max(&c, bad);
        if (c.rank == 0 && !ok(all_bad == 0, "%s: every rank reads its shuffled epoch shard "
                               "back (parallel open)", pc->name) && bad)
            diag("%s", why);
        fails += all_bad != 0;

        /* (b) rank 0 alone: every dataset, and the digest */
        if (c.rank == 0) {
            uint64_t digest = 0xcbf29ce484222325ull;
            int nbad = -1;
            if (store_open(&r, path, NULL, NULL, &err) == 0) {
                nbad = fx_verify(r, 0, N, &digest, why, sizeof why);
                store_close(r);
            } else {
                snprintf(why, sizeof why, "%s", err.msg);
            }
            if (!ok(nbad == 0, "%s: every dataset reads back serially", pc->name))
                diag("%s", why);
            fails += nbad != 0;
            fprintf(digests, "%s %016llx\n", pc->name, (unsigned long long)digest);
            digest_of[k] = digest;
        }
    }
    if (c.rank == 0) {
        int same = digest_of[0] != 0 && digest_of[0] == digest_of[3];
        if (!ok(same, "fp32 through parallel HDF5 reads back the same as through %s",
                c.size == 1 ? "a serial file" : "one writer"))
            diag("digests %016llx and %016llx", (unsigned long long)digest_of[0],
                 (unsigned long long)digest_of[3]);
        fails += !same;
    }
    if (c.rank == 0) {
        /* the epoch order itself, to compare across rank counts */
        int64_t idx[N];
        uint64_t h = 0xcbf29ce484222325ull;
        store_epoch_order(idx, N, 7, 2);
        for (int i = 0; i < N; i++)
            h = (h ^ (uint64_t)idx[i]) * 0x100000001b3ull;
        fprintf(digests, "epoch_order %016llx\n", (unsigned long long)h);
        fclose(digests);
    }
    int all = comm_agree_max(&c, fails);
    comm_finalize(&c);
    return c.rank == 0 ? (done_testing() || all) : all != 0;
}
