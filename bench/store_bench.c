/* store_bench.c: teacher store write and read throughput against the raw
 * sequential bandwidth of the same disk, measured in the same run,
 * interleaved (raw write, store write, raw read, store read; repeated, the
 * median is reported). Not a test: built with `make bench/store_bench` and
 * run by bench/store_bench.sh under mpiexec at 1 and 2 ranks.
 *
 * Teacher: BERT-base-like (T = 128, H = 768, 12 heads all stored, hidden
 * layers 00..12, attention layers 01..12, C = 2) plus the examples group
 * and logits. Every rank writes its layout_shard in batches of --batch
 * examples, exactly as stage extract would.
 *
 * The writer path is store_create's choice (--writer auto: one rank writes a
 * serial file, ranks of one node send their chunks to rank 0) unless
 * forced: --writer mpiio (parallel HDF5, what ranks on several nodes use)
 * or --writer one.
 *
 * Raw disk: every rank pwrite()s its contiguous part of one file of the
 * store's size in 8 MiB blocks of random bytes, then fdatasync (as dd with
 * conv=fdatasync); with --raw-overlap 1 it also starts the writeback of
 * each block as soon as it is written (sync_file_range), the overlap of
 * copying and writeback that the store's serial writer gets; raw read
 * preads it back. Before every read the file's pages are dropped from the
 * page cache (fdatasync + posix_fadvise DONTNEED), so reads come from the
 * disk. Throughput = file bytes / wall time of the slowest rank; the store
 * write includes create, fp16/bf16 conversion, finish (close, fsync,
 * rename); the store read includes the collective open and the conversion
 * to fp32 of every dataset.
 *
 * On a VM whose memory the host backs lazily (the Firecracker VMs this was
 * developed on), the first touch of a guest page by the page cache costs
 * several times a memory copy, and would be charged to whichever
 * measurement happens to get fresh pages. --prefault-mb touches that much
 * memory once before measuring, and one untimed pass of each kind runs
 * first; both only stabilise the numbers, neither favours the store. */
#define _GNU_SOURCE /* sync_file_range (Linux) */
#include "kd/io/teacher_store.h"
#include "kd/parallel/layout.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct opts {
    int64_t examples;
    int32_t seq, hidden, heads, layers, classes;
    int64_t batch;
    int repeat;
    int mean_length; /* 0: every example full length */
    int verbose;     /* print every pass */
    int raw_overlap; /* raw peer starts writeback per block */
    long prefault_mb; /* memory to touch once before measuring */
    const char *dir;
    const char *precs;
    enum store_writer_io writer;
};

static double now(void) { return MPI_Wtime(); }

static double max_over(const struct comm *c, double v)
{
    double out = v;
    MPI_CHECK(MPI_Allreduce(&v, &out, 1, MPI_DOUBLE, MPI_MAX, c->world));
    return out;
}

static void drop_cache(const char *path)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return;
    fdatasync(fd);
    posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    close(fd);
}

static int64_t file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (int64_t)st.st_size : -1;
}

static uint64_t rnd(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* ---- raw disk ------------------------------------------------------------- */

enum { BLOCK = 8 << 20 };

static double raw_write(const struct comm *c, const char *path, int64_t bytes, char *block,
                        int overlap)
{
    long long b, e;
    layout_shard(bytes / BLOCK, c->rank, c->size, &b, &e);
    comm_barrier(c);
    double t0 = now();
    int fd = open(path, O_WRONLY | O_CREAT, 0644);
    if (fd < 0)
        kd_die(1, "%s: cannot create", path);
    for (long long k = b; k < e; k++) {
        if (pwrite(fd, block, BLOCK, (off_t)k * BLOCK) != BLOCK)
            kd_die(1, "%s: write failed", path);
#ifdef SYNC_FILE_RANGE_WRITE
        if (overlap)
            sync_file_range(fd, (off_t)k * BLOCK, BLOCK, SYNC_FILE_RANGE_WRITE);
#endif
    }
    fdatasync(fd);
    close(fd);
    return max_over(c, now() - t0);
}

static double raw_read(const struct comm *c, const char *path, int64_t bytes, char *block)
{
    long long b, e;
    layout_shard(bytes / BLOCK, c->rank, c->size, &b, &e);
    if (c->rank == 0)
        drop_cache(path);
    comm_barrier(c);
    double t0 = now();
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        kd_die(1, "%s: cannot open", path);
    for (long long k = b; k < e; k++)
        if (pread(fd, block, BLOCK, (off_t)k * BLOCK) != BLOCK)
            kd_die(1, "%s: read failed", path);
    close(fd);
    return max_over(c, now() - t0);
}

/* ---- store ------------------------------------------------------------------- */

static void bert_spec(struct store_spec *s, const struct opts *o, int32_t *lengths,
                      enum h5_prec prec)
{
    store_spec_init(s);
    s->n_examples = o->examples;
    s->seq_len = o->seq;
    s->hidden_size = o->hidden;
    s->model_heads = o->heads;
    s->num_classes = o->classes;
    s->datasets = STORE_BIT(STORE_DS_INPUT_IDS) | STORE_BIT(STORE_DS_TOKEN_TYPE_IDS) |
                  STORE_BIT(STORE_DS_ATTENTION_MASK) | STORE_BIT(STORE_DS_LABELS) |
                  STORE_BIT(STORE_DS_LOGITS) | STORE_BIT(STORE_DS_HIDDEN) |
                  STORE_BIT(STORE_DS_ATTENTION);
    s->n_hidden_layers = o->layers + 1;
    for (int l = 0; l <= o->layers; l++)
        s->hidden_layers[l] = l;
    s->n_attention_layers = o->layers;
    for (int l = 0; l < o->layers; l++)
        s->attention_layers[l] = l + 1;
    s->n_heads = o->heads;
    for (int h = 0; h < o->heads; h++)
        s->heads[h] = h;
    for (int d = 0; d < STORE_DS_COUNT; d++)
        s->precision[d] = prec;
    uint64_t seed = 99;
    for (int64_t i = 0; i < o->examples; i++) {
        int32_t l = o->seq;
        if (o->mean_length > 0) {
            l = o->mean_length / 2 + (int32_t)(rnd(&seed) % (uint64_t)(o->mean_length + 1));
            l = l < 1 ? 1 : l > o->seq ? o->seq : l;
        }
        lengths[i] = l;
    }
    s->lengths = lengths;
}

/* One batch of teacher outputs in natural shapes, reused for every round
 * (the content does not matter for throughput, only that it is not
 * trivially compressible). */
struct bench_batch {
    struct store_batch b;
    int32_t *ints;
    float *logits;
    float **hidden;
    float **attention;
    float *pool;
};

static void batch_make(struct bench_batch *bb, const struct store_spec *s, int64_t n)
{
    size_t T = (size_t)s->seq_len, H = (size_t)s->hidden_size, NH = (size_t)s->model_heads;
    size_t per_h = T * H, per_a = NH * T * T;
    size_t n_h = (size_t)s->n_hidden_layers, n_a = (size_t)s->n_attention_layers;
    memset(bb, 0, sizeof *bb);
    bb->ints = kd_malloc((size_t)n * (3 * T + 1) * sizeof(int32_t));
    for (size_t i = 0; i < (size_t)n * (3 * T + 1); i++)
        bb->ints[i] = (int32_t)(i % 30522);
    bb->logits = kd_malloc((size_t)n * (size_t)s->num_classes * sizeof(float));
    size_t pool_n = (size_t)n * (n_h * per_h + n_a * per_a);
    bb->pool = kd_malloc(pool_n * sizeof(float));
    uint64_t seed = 12345;
    for (size_t i = 0; i < pool_n; i++)
        bb->pool[i] = (float)(rnd(&seed) >> 40) * 0x1p-24f;
    for (size_t i = 0; i < (size_t)n * (size_t)s->num_classes; i++)
        bb->logits[i] = bb->pool[i];
    bb->hidden = kd_malloc(n_h * sizeof *bb->hidden);
    bb->attention = kd_malloc(n_a * sizeof *bb->attention);
    for (size_t l = 0; l < n_h; l++)
        bb->hidden[l] = bb->pool + l * (size_t)n * per_h;
    for (size_t l = 0; l < n_a; l++)
        bb->attention[l] = bb->pool + n_h * (size_t)n * per_h + l * (size_t)n * per_a;
    bb->b.input_ids = bb->ints;
    bb->b.token_type_ids = bb->ints + (size_t)n * T;
    bb->b.attention_mask = bb->ints + 2 * (size_t)n * T;
    bb->b.labels_i32 = bb->ints + 3 * (size_t)n * T;
    bb->b.logits = bb->logits;
    bb->b.hidden = (const float *const *)bb->hidden;
    bb->b.attention = (const float *const *)bb->attention;
}

static void batch_free(struct bench_batch *bb)
{
    free(bb->ints);
    free(bb->logits);
    free(bb->pool);
    free(bb->hidden);
    free(bb->attention);
}

static const struct store_provenance bench_prov = {
    .teacher_config = "{\"model_type\": \"bert\", \"hidden_size\": 768}",
    .teacher_sha256 = "0000000000000000000000000000000000000000000000000000000000000000",
    .vocab_sha256 = "0000000000000000000000000000000000000000000000000000000000000000",
    .data_sha256 = "0000000000000000000000000000000000000000000000000000000000000000",
};

/* Seconds of the last store write spent in create, batches and finish. */
static double phase[3];

static double store_write(const struct comm *c, const char *path, const struct store_spec *s,
                          struct bench_batch *bb, int64_t batch, enum store_writer_io io)
{
    struct kd_err err;
    long long b, e, rounds = 0;
    for (int r = 0; r < c->size; r++) {
        layout_shard(s->n_examples, r, c->size, &b, &e);
        if ((e - b + batch - 1) / batch > rounds)
            rounds = (e - b + batch - 1) / batch;
    }
    layout_shard(s->n_examples, c->rank, c->size, &b, &e);
    comm_barrier(c);
    double t0 = now();
    store_writer_t *w = NULL;
    if (store_create_io(&w, path, c, s, &bench_prov, io, &err) < 0)
        kd_die(1, "%s", err.msg);
    double t1 = now();
    for (long long k = 0; k < rounds; k++) {
        int64_t first = b + k * batch;
        bb->b.first = first < e ? first : 0;
        bb->b.count = first >= e ? 0 : (e - first < batch ? e - first : batch);
        if (store_write_batch(w, &bb->b, &err) < 0)
            kd_die(1, "%s", err.msg);
    }
    double t2 = now();
    if (store_finish(w, &err) < 0)
        kd_die(1, "%s", err.msg);
    double t3 = now();
    phase[0] = max_over(c, t1 - t0);
    phase[1] = max_over(c, t2 - t1);
    phase[2] = max_over(c, t3 - t2);
    return max_over(c, t3 - t0);
}

static double store_read(const struct comm *c, const char *path, int64_t batch)
{
    struct kd_err err;
    if (c->rank == 0)
        drop_cache(path);
    comm_barrier(c);
    double t0 = now();
    store_reader_t *r = NULL;
    if (store_open(&r, path, c, NULL, &err) < 0)
        kd_die(1, "%s", err.msg);
    const struct store_spec *s = store_reader_spec(r);
    long long b, e;
    layout_shard(s->n_examples, c->rank, c->size, &b, &e);
    size_t most = store_example_elems(s, STORE_DS_ATTENTION);
    if (store_example_elems(s, STORE_DS_HIDDEN) > most)
        most = store_example_elems(s, STORE_DS_HIDDEN);
    float *buf = kd_malloc((size_t)batch * most * sizeof *buf);
    for (long long first = b; first < e; first += batch) {
        int64_t n = e - first < batch ? e - first : batch;
        for (int d = 0; d < STORE_DS_COUNT; d++) {
            if (!((s->datasets | STORE_BIT(STORE_DS_LENGTHS)) & STORE_BIT(d)))
                continue;
            int nl = d == STORE_DS_HIDDEN      ? s->n_hidden_layers
                     : d == STORE_DS_ATTENTION ? s->n_attention_layers : 1;
            for (int l = 0; l < nl; l++) {
                int layer = d == STORE_DS_HIDDEN      ? s->hidden_layers[l]
                            : d == STORE_DS_ATTENTION ? s->attention_layers[l] : -1;
                if (store_read_f32(r, (enum store_ds)d, layer, first, n, buf, &err) < 0)
                    kd_die(1, "%s", err.msg);
            }
        }
    }
    free(buf);
    store_close(r);
    return max_over(c, now() - t0);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static void usage(void)
{
    fprintf(stderr, "usage: store_bench [--examples N] [--batch B] [--repeat R] "
                    "[--precisions fp32,fp16,bf16] [--mean-length L] [--dir DIR] "
                    "[--verbose 0|1] [--prefault-mb MB] [--writer auto|one|mpiio] "
                    "[--raw-overlap 0|1]\n");
}

int main(int argc, char **argv)
{
    struct comm c;
    comm_init(&c, &argc, &argv);
    struct opts o = {.examples = 96, .seq = 128, .hidden = 768, .heads = 12, .layers = 12,
                     .classes = 2, .batch = 8, .repeat = 3, .mean_length = 0,
                     .dir = ".", .precs = "fp32,fp16,bf16"};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) {
            usage();
            return 2;
        }
        if (!strcmp(a, "--examples")) o.examples = atoll(v);
        else if (!strcmp(a, "--batch")) o.batch = atoll(v);
        else if (!strcmp(a, "--repeat")) o.repeat = atoi(v);
        else if (!strcmp(a, "--mean-length")) o.mean_length = atoi(v);
        else if (!strcmp(a, "--dir")) o.dir = v;
        else if (!strcmp(a, "--precisions")) o.precs = v;
        else if (!strcmp(a, "--verbose")) o.verbose = atoi(v);
        else if (!strcmp(a, "--prefault-mb")) o.prefault_mb = atol(v);
        else if (!strcmp(a, "--raw-overlap")) o.raw_overlap = atoi(v);
        else if (!strcmp(a, "--writer") && !strcmp(v, "auto")) o.writer = STORE_WRITER_AUTO;
        else if (!strcmp(a, "--writer") && !strcmp(v, "one")) o.writer = STORE_WRITER_ONE_WRITER;
        else if (!strcmp(a, "--writer") && !strcmp(v, "mpiio")) o.writer = STORE_WRITER_MPIIO;
        else {
            usage();
            return 2;
        }
        i++;
    }
    if (o.repeat < 1 || o.repeat > 49)
        o.repeat = 3;
    int32_t *lengths = kd_malloc((size_t)o.examples * sizeof *lengths);
    char *block = kd_malloc(BLOCK);
    uint64_t seed = 777;
    for (size_t i = 0; i < BLOCK / 8; i++)
        ((uint64_t *)block)[i] = rnd(&seed);
    if (o.prefault_mb > 0 && c.rank == 0) {
        size_t n = (size_t)o.prefault_mb << 20;
        char *p = malloc(n);
        if (p) {
            for (size_t i = 0; i < n; i += 4096)
                p[i] = 1;
            free(p);
        }
    }
    comm_barrier(&c);
    char raw_path[1024], store_path[1024];
    snprintf(raw_path, sizeof raw_path, "%s/store_bench.raw", o.dir);
    snprintf(store_path, sizeof store_path, "%s/store_bench.h5", o.dir);

    if (c.rank == 0)
        printf("# store_bench: %d rank(s), writer %s, %lld examples, T=%d H=%d heads=%d "
               "hidden layers 00..%02d, attention layers 01..%02d, batch %lld, lengths %s, "
               "%d repeats (median), raw peer %s\n", c.size,
               o.writer == STORE_WRITER_MPIIO ? "mpiio" : o.writer == STORE_WRITER_ONE_WRITER
                                                              ? "one" : "auto",
               (long long)o.examples, o.seq, o.hidden, o.heads, o.layers, o.layers,
               (long long)o.batch, o.mean_length ? "random" : "full", o.repeat,
               o.raw_overlap ? "with writeback per block" : "fdatasync at the end");
    static const enum h5_prec all[3] = {H5_PREC_F32, H5_PREC_F16, H5_PREC_BF16};
    struct store_size sizes[3];
    int have[3] = {0};
    for (int p = 0; p < 3; p++) {
        if (!strstr(o.precs, h5_prec_name(all[p])))
            continue;
        struct store_spec s;
        struct kd_err err;
        bert_spec(&s, &o, lengths, all[p]);
        if (store_plan_size(&s, &sizes[p], &err) < 0)
            kd_die(1, "%s", err.msg);
        have[p] = 1;
        long long b, e;
        layout_shard(o.examples, c.rank, c.size, &b, &e);
        struct bench_batch bb;
        batch_make(&bb, &s, o.batch);
        double tw[51], tr[51], rw[51], rr[51];
        int64_t bytes = 0;
        for (int k = -1; k < o.repeat; k++) { /* k = -1: warm-up, not reported */
            /* raw first sized like the store, then the store; interleaved */
            int64_t raw_bytes = (int64_t)sizes[p].total / BLOCK * BLOCK;
            /* both files start afresh in every pass, their old pages freed
             * just before, so both peers allocate page cache alike */
            if (c.rank == 0) {
                remove(raw_path);
                remove(store_path);
            }
            comm_barrier(&c);
            int j = k < 0 ? 50 : k;
            rw[j] = raw_bytes / raw_write(&c, raw_path, raw_bytes, block, o.raw_overlap) / 1e9;
            tw[j] = store_write(&c, store_path, &s, &bb, o.batch, o.writer);
            bytes = file_size(store_path);
            tw[j] = bytes / tw[j] / 1e9;
            rr[j] = raw_bytes / raw_read(&c, raw_path, raw_bytes, block) / 1e9;
            tr[j] = bytes / store_read(&c, store_path, o.batch) / 1e9;
            if (c.rank == 0 && o.verbose)
                printf("#   %s pass %d: raw write %.2f, store write %.2f (create %.2f s, "
                       "batches %.2f s, finish %.2f s), raw read %.2f, store read %.2f GB/s\n",
                       h5_prec_name(all[p]), k, rw[j], tw[j], phase[0], phase[1], phase[2],
                       rr[j], tr[j]);
        }
        batch_free(&bb);
        if (c.rank == 0) {
            double mw = median(tw, o.repeat), mr = median(tr, o.repeat);
            double mrw = median(rw, o.repeat), mrr = median(rr, o.repeat);
            printf("%-5s file %8.1f MB (%6.2f MB/example, plan %+.2f%%)  write %5.2f GB/s = "
                   "%5.1f%% of raw %5.2f  read %5.2f GB/s = %5.1f%% of raw %5.2f\n",
                   h5_prec_name(all[p]), bytes / 1e6, bytes / 1e6 / (double)o.examples,
                   100.0 * ((double)sizes[p].total - (double)bytes) / (double)bytes, mw,
                   100 * mw / mrw, mrw, mr, 100 * mr / mrr, mrr);
            fflush(stdout);
        }
        if (c.rank == 0) {
            remove(store_path);
            remove(raw_path);
        }
    }
    if (c.rank == 0) {
        printf("# bytes per example per component (plan, data + Fletcher32 words)\n");
        printf("%-28s", "component");
        for (int p = 0; p < 3; p++)
            if (have[p])
                printf(" %12s", h5_prec_name(all[p]));
        printf("\n");
        for (int d = 0; d < STORE_DS_COUNT; d++) {
            int any = 0;
            for (int p = 0; p < 3; p++)
                any |= have[p] && sizes[p].bytes[d] > 0;
            if (!any)
                continue;
            printf("%-28s", store_ds_path((enum store_ds)d));
            for (int p = 0; p < 3; p++)
                if (have[p])
                    printf(" %12.0f", (double)sizes[p].bytes[d] / (double)o.examples);
            printf("\n");
        }
        printf("%-28s", "total (with metadata)");
        for (int p = 0; p < 3; p++)
            if (have[p])
                printf(" %12.0f", (double)sizes[p].total / (double)o.examples);
        printf("\n");
        /* the same plan for GLUE-like lengths (SST-2: mean about 25 of 128) */
        struct opts g = o;
        g.mean_length = 25;
        g.examples = 10000;
        int32_t *gl = kd_malloc((size_t)g.examples * sizeof *gl);
        printf("# same, lengths uniform in [12, 37] (mean 25), hidden all tokens\n");
        for (int d = STORE_DS_HIDDEN; d <= STORE_DS_ATTENTION; d++) {
            printf("%-28s", store_ds_path((enum store_ds)d));
            for (int p = 0; p < 3; p++) {
                struct store_spec gs;
                struct store_size gz;
                struct kd_err err;
                if (!have[p])
                    continue;
                bert_spec(&gs, &g, gl, all[p]);
                if (store_plan_size(&gs, &gz, &err) < 0)
                    kd_die(1, "%s", err.msg);
                printf(" %12.0f", (double)gz.bytes[d] / (double)g.examples);
            }
            printf("\n");
        }
        free(gl);
    }
    free(lengths);
    free(block);
    comm_finalize(&c);
    return 0;
}
