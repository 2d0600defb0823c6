/* t_store.c: teacher store round trips on one rank (MPI singleton):
 * every dataset in fp32, fp16, bf16 and mixed precisions, all-token and
 * CLS-only hidden states, classification and regression labels, ragged
 * attention, example ranges across chunk boundaries, optional deflate;
 * the spec read back; the size plan against the real file; epoch
 * shuffling; spec validation messages. Tolerances: fp32 and integers
 * exact, fp16 relative 2^-11, bf16 relative 2^-8 (round to nearest). */
#include "kd/io/teacher_store.h"
#include "kd/parallel/layout.h"
#include "t_store_fixture.h"
#include "../tap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const struct store_expect fx_expect = {
    .teacher_sha256 = "1111111111111111111111111111111111111111111111111111111111111111",
    .vocab_sha256 = "2222222222222222222222222222222222222222222222222222222222222222",
    .data_sha256 = "3333333333333333333333333333333333333333333333333333333333333333",
};

struct rt_case {
    const char *what;
    int64_t n;
    int32_t seq_len, hidden;
    enum h5_prec prec;
    enum store_tokens tokens;
    int labels_float, deflate;
    int64_t batch;
    int mixed; /* hidden fp16, attention bf16, the rest as prec */
};

static int same_spec(const struct store_spec *a, const struct store_spec *b)
{
    int same = a->n_examples == b->n_examples && a->seq_len == b->seq_len &&
               a->hidden_size == b->hidden_size && a->model_heads == b->model_heads &&
               a->num_classes == b->num_classes &&
               a->attribution_views == b->attribution_views &&
               a->mlm_positions == b->mlm_positions && a->mlm_topk == b->mlm_topk &&
               a->datasets == b->datasets && a->tokens == b->tokens &&
               a->labels_float == b->labels_float && a->n_heads == b->n_heads &&
               a->n_hidden_layers == b->n_hidden_layers &&
               a->n_attention_layers == b->n_attention_layers;
    for (int i = 0; same && i < a->n_hidden_layers; i++)
        same = a->hidden_layers[i] == b->hidden_layers[i];
    for (int i = 0; same && i < a->n_attention_layers; i++)
        same = a->attention_layers[i] == b->attention_layers[i];
    for (int i = 0; same && i < a->n_heads; i++)
        same = a->heads[i] == b->heads[i];
    for (int d = 0; same && d < STORE_DS_COUNT; d++)
        same = !store_ds_is_float((enum store_ds)d) || a->precision[d] == b->precision[d];
    for (int64_t i = 0; same && i < a->n_examples; i++)
        same = a->lengths[i] == b->lengths[i];
    return same;
}

static void round_trip(const struct comm *c, const struct rt_case *k)
{
    struct store_spec s;
    struct kd_err err = {""};
    char path[128], why[KD_ERR_MSG_MAX];
    int32_t *lengths = kd_malloc((size_t)k->n * sizeof *lengths);
    fx_spec_full(&s, lengths, k->n, k->seq_len, k->prec, k->tokens, k->labels_float);
    s.hidden_size = k->hidden;
    s.deflate = k->deflate;
    if (k->mixed) {
        s.precision[STORE_DS_HIDDEN] = H5_PREC_F16;
        s.precision[STORE_DS_ATTENTION] = H5_PREC_BF16;
    }
    snprintf(path, sizeof path, "t_store.%ld.h5", (long)getpid());
    int w = fx_write(path, c, &s, k->batch, &err);
    if (!ok(w == 0, "%s: written in batches of %lld", k->what, (long long)k->batch))
        diag("%s", err.msg);
    store_reader_t *r = NULL;
    if (w != 0 || !ok(store_open(&r, path, NULL, &fx_expect, &err) == 0, "%s: opened",
                      k->what)) {
        diag("%s", err.msg);
        skip(4, "no store");
        free(lengths);
        remove(path);
        return;
    }
    ok(same_spec(store_reader_spec(r), &s), "%s: the spec read back equals the one written",
       k->what);
    int bad = fx_verify(r, 0, k->n, NULL, why, sizeof why);
    if (!ok(bad == 0, "%s: every dataset of all %lld examples reads back", k->what,
            (long long)k->n))
        diag("%d datasets differ; first: %s", bad, why);
    int64_t a = k->n / 3, b = k->n - k->n / 4; /* an inner range, chunk edges inside */
    bad = fx_verify(r, a, b - a, NULL, why, sizeof why) +
          fx_verify(r, k->n - 1, 1, NULL, why, sizeof why);
    if (!ok(bad == 0, "%s: examples [%lld, %lld) and the last one read back alone", k->what,
            (long long)a, (long long)b))
        diag("%s", why);
    ok_str(store_reader_provenance(r)->created, fx_prov.created, "%s: provenance kept",
           k->what);
    store_close(r);
    free(lengths);
    remove(path);
}

/* Sum of the stored bytes of every dataset in the file. */
static herr_t add_storage(hid_t o, const char *name, const H5O_info_t *info, void *data)
{
    if (info->type == H5O_TYPE_DATASET) {
        hid_t d = H5Dopen2(o, name, H5P_DEFAULT);
        *(uint64_t *)data += H5Dget_storage_size(d);
        H5Dclose(d);
    }
    return 0;
}

static void size_plan(const struct comm *c, enum h5_prec prec)
{
    struct store_spec s;
    struct store_size plan;
    struct kd_err err = {""};
    enum { N = 300 };
    int32_t lengths[N];
    char path[128];
    fx_spec_full(&s, lengths, N, 32, prec, STORE_TOKENS_ALL, 0);
    s.hidden_size = 64;
    snprintf(path, sizeof path, "t_store_size.%ld.h5", (long)getpid());
    ok(store_plan_size(&s, &plan, &err) == 0, "%s: size planned", h5_prec_name(prec));
    if (fx_write(path, c, &s, 16, &err) < 0) {
        ok(0, "%s: written: %s", h5_prec_name(prec), err.msg);
        return;
    }
    uint64_t stored = 0;
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    H5Ovisit(f, H5_INDEX_NAME, H5_ITER_NATIVE, add_storage, &stored);
    H5Fclose(f);
    struct stat st;
    stat(path, &st);
    ok(stored == plan.data, "%s: planned data bytes %llu = stored dataset bytes %llu",
       h5_prec_name(prec), (unsigned long long)plan.data, (unsigned long long)stored);
    double rel = ((double)st.st_size - (double)plan.total) / (double)st.st_size;
    ok(rel > -0.03 && rel < 0.03,
       "%s: planned total %llu within 3%% of the file size %lld (%.2f%%; metadata planned "
       "%llu, actual %lld)", h5_prec_name(prec), (unsigned long long)plan.total,
       (long long)st.st_size, 100 * rel, (unsigned long long)plan.metadata,
       (long long)st.st_size - (long long)plan.data);
    /* without lengths (dry run): full-length attention, an upper bound */
    struct store_size upper;
    s.lengths = NULL;
    ok(store_plan_size(&s, &upper, &err) == 0 &&
       upper.bytes[STORE_DS_ATTENTION] > plan.bytes[STORE_DS_ATTENTION] &&
       upper.bytes[STORE_DS_HIDDEN] == plan.bytes[STORE_DS_HIDDEN],
       "%s: planning without lengths bounds the ragged attention from above",
       h5_prec_name(prec));
    remove(path);
}

static void shuffling(void)
{
    enum { N = 1001 };
    static int64_t a[N], b[N], cnt[N];
    store_epoch_order(a, N, 42, 3);
    memset(cnt, 0, sizeof cnt);
    for (int i = 0; i < N; i++)
        if (a[i] >= 0 && a[i] < N)
            cnt[a[i]]++;
    int perm = 1, moved = 0;
    for (int i = 0; i < N; i++) {
        perm &= cnt[i] == 1;
        moved += a[i] != i;
    }
    ok(perm && moved > N / 2, "epoch order is a permutation of %d examples (%d moved)", N,
       moved);
    store_epoch_order(b, N, 42, 3);
    ok(memcmp(a, b, sizeof a) == 0, "the same seed and epoch give the same order");
    store_epoch_order(b, N, 42, 4);
    ok(memcmp(a, b, sizeof a) != 0, "another epoch gives another order");
    store_epoch_order(b, N, 43, 3);
    ok(memcmp(a, b, sizeof a) != 0, "another seed gives another order");
    int tiles = 1;
    for (int w = 1; w <= 4; w++) {
        int64_t next = 0;
        for (int r = 0; r < w; r++) {
            int64_t beg, end;
            store_epoch_shard(b, N, 42, 3, r, w, &beg, &end);
            tiles &= beg == next && memcmp(a, b, sizeof a) == 0;
            next = end;
        }
        tiles &= next == N;
    }
    ok(tiles, "on 1..4 ranks the shards tile the same global order");
}

/* Batches in an order the pending buffers do not expect: backwards, and
 * with a gap filled later; every example still lands in its place. */
static void out_of_order(const struct comm *c)
{
    struct store_spec s;
    struct kd_err err = {""};
    enum { N = 200 };
    int32_t lengths[N];
    char path[128], why[KD_ERR_MSG_MAX];
    fx_spec_full(&s, lengths, N, 16, H5_PREC_F16, STORE_TOKENS_ALL, 0);
    s.hidden_size = 64;
    snprintf(path, sizeof path, "t_store_order.%ld.h5", (long)getpid());
    store_writer_t *w = NULL;
    int rc = store_create(&w, path, c, &s, &fx_prov, &err);
    static const int64_t firsts[] = {150, 100, 50, 0, 120, 60}, counts[] = {50, 20, 50, 50, 30, 40};
    for (size_t k = 0; rc == 0 && k < sizeof firsts / sizeof firsts[0]; k++) {
        struct fx_batch fb;
        fx_batch_fill(&fb, &s, firsts[k], counts[k]);
        rc = store_write_batch(w, &fb.b, &err);
        fx_batch_free(&fb);
    }
    if (rc == 0)
        rc = store_finish(w, &err);
    else if (w)
        store_abort(w);
    store_reader_t *r = NULL;
    if (!ok(rc == 0 && store_open(&r, path, NULL, NULL, &err) == 0,
            "batches written backwards and with gaps")) {
        diag("%s", err.msg);
        remove(path);
        return;
    }
    int bad = fx_verify(r, 0, N, NULL, why, sizeof why);
    if (!ok(bad == 0, "out-of-order batches read back in place"))
        diag("%s", why);
    store_close(r);
    remove(path);
}

static void spec_errors(void)
{
    struct store_spec s;
    struct kd_err err = {""};
    int32_t lengths[4];
    fx_spec_full(&s, lengths, 4, 8, H5_PREC_F32, STORE_TOKENS_ALL, 0);
    ok(store_spec_check(&s, &err) == 0, "the fixture spec is valid");
    s.heads[2] = 1;
    ok(store_spec_check(&s, &err) < 0 && strstr(err.msg, "heads[2] = 1 is not above heads[1] = 2"),
       "heads out of order named: %s", err.msg);
    fx_spec_full(&s, lengths, 4, 8, H5_PREC_F32, STORE_TOKENS_ALL, 0);
    lengths[3] = 9;
    ok(store_spec_check(&s, &err) < 0 && strstr(err.msg, "lengths[3]: expected 1..8"),
       "a length above seq_len named: %s", err.msg);
    fx_spec_full(&s, lengths, 4, 8, H5_PREC_F32, STORE_TOKENS_ALL, 0);
    s.attention_layers[0] = 0;
    ok(store_spec_check(&s, &err) < 0 && strstr(err.msg, "attention_layers[0] = 0 is outside 1..99"),
       "attention layer 0 (embeddings have none) refused: %s", err.msg);
    fx_spec_full(&s, lengths, 4, 8, H5_PREC_F32, STORE_TOKENS_ALL, 0);
    ok(store_example_elems(&s, STORE_DS_ATTENTION) == 3 * 8 * 8 &&
       store_example_elems(&s, STORE_DS_HIDDEN) == 8 * 8 &&
       store_example_elems(&s, STORE_DS_MLM_TOPK_LOGITS) == 3 * 2,
       "read buffer sizes per example");
}

static void read_errors(const struct comm *c)
{
    struct store_spec s;
    struct kd_err err = {""};
    int32_t lengths[5];
    char path[128];
    float buf[1024];
    fx_spec_full(&s, lengths, 5, 4, H5_PREC_F16, STORE_TOKENS_CLS, 0);
    snprintf(path, sizeof path, "t_store_err.%ld.h5", (long)getpid());
    store_reader_t *r = NULL;
    if (fx_write(path, c, &s, 2, &err) < 0 || store_open(&r, path, NULL, NULL, &err) < 0) {
        ok(0, "store for read errors: %s", err.msg);
        return;
    }
    ok(store_read_f32(r, STORE_DS_HIDDEN, 1, 0, 1, buf, &err) < 0 &&
       strstr(err.msg, "/hidden/layer_01 is not in the store"),
       "a layer not stored is named: %s", err.msg);
    ok(store_read_f32(r, STORE_DS_LOGITS, -1, 3, 3, buf, &err) < 0 &&
       strstr(err.msg, "/logits: examples [3, 6) are outside [0, 5)"),
       "a range past the end is named: %s", err.msg);
    int32_t ibuf[8];
    ok(store_read_i32(r, STORE_DS_LOGITS, 0, 1, ibuf, &err) < 0 &&
       strstr(err.msg, "stored as fp16"), "int32 read of a float dataset refused: %s",
       err.msg);
    store_close(r);
    remove(path);
}

int main(int argc, char **argv)
{
    struct comm c;
    comm_init(&c, &argc, &argv);
    const struct rt_case cases[] = {
        {"fp32 all tokens", 13, 6, 8, H5_PREC_F32, STORE_TOKENS_ALL, 0, 0, 4, 0},
        {"fp16 all tokens", 13, 6, 8, H5_PREC_F16, STORE_TOKENS_ALL, 1, 0, 4, 0},
        {"bf16 all tokens", 13, 6, 8, H5_PREC_BF16, STORE_TOKENS_ALL, 0, 0, 5, 0},
        {"fp32 cls only", 9, 5, 8, H5_PREC_F32, STORE_TOKENS_CLS, 1, 0, 3, 0},
        {"fp16 cls only", 9, 5, 8, H5_PREC_F16, STORE_TOKENS_CLS, 0, 0, 3, 0},
        {"bf16 cls only", 9, 5, 8, H5_PREC_BF16, STORE_TOKENS_CLS, 1, 0, 9, 0},
        {"fp32 multi-chunk", 300, 32, 64, H5_PREC_F32, STORE_TOKENS_ALL, 0, 0, 7, 0},
        {"fp16 multi-chunk", 300, 32, 64, H5_PREC_F16, STORE_TOKENS_ALL, 1, 0, 7, 0},
        {"bf16 multi-chunk", 300, 32, 64, H5_PREC_BF16, STORE_TOKENS_ALL, 0, 0, 7, 0},
        {"mixed fp32/fp16/bf16", 40, 16, 32, H5_PREC_F32, STORE_TOKENS_ALL, 0, 0, 6, 1},
        {"fp16 shuffle+deflate", 40, 16, 32, H5_PREC_F16, STORE_TOKENS_ALL, 0, 4, 6, 0},
        {"single example", 1, 3, 4, H5_PREC_BF16, STORE_TOKENS_ALL, 0, 0, 1, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        round_trip(&c, &cases[i]);
    size_plan(&c, H5_PREC_F32);
    size_plan(&c, H5_PREC_F16);
    out_of_order(&c);
    shuffling();
    spec_errors();
    read_errors(&c);
    comm_finalize(&c);
    return done_testing();
}
