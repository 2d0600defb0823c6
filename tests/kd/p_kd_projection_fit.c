/* p_kd_projection_fit.c: least-squares initialisation of hidden-loss
 * projections (stages/projection_fit.h) against the random one, on any
 * number of ranks.
 *
 *   p_kd_projection_fit OUT           run; rank 0 prints TAP, writes the numbers to OUT
 *   p_kd_projection_fit --compare A B the numbers of two runs agree (rel 1e-4; no MPI)
 *
 * Teacher: random BERT, 4 layers, hidden 64 (4 heads of 16), FFN 128,
 * vocabulary 64, std 0.1 (large enough that layers change the states).
 * Student: random, 2 layers, hidden 32 (4 heads of 8), FFN 64. The teacher
 * runs online: the callback forwards it on each batch, as an online stage
 * would. Data: 96 training sequences (the fit's sample) and 24 held-out
 * ones, 6..16 tokens of 16.
 *
 * Losses: [0] hidden MSE over every real token, uniform map (student 1, 2
 * <-> teacher 2, 4); [1] hidden MSE over [CLS], explicit map 0 -> 0 and
 * 2 -> 4. Both project 32 -> 64. For each, the value at step 0 on the
 * held-out batch (kd_loss_set_compute, the loss training starts from) with
 * the lstsq-initialised projections must be lower than with the random
 * ones (the same seed), and on the fit's own sample every pair's MSE must
 * drop. The numbers go to OUT; the runner compares 1, 2 and 4 ranks.
 *
 * Offline: the same teacher's outputs are written to a teacher store (the
 * extract stage's path: extract_fill, store_create, every rank its shard)
 * and read back through a struct teacher_reader with
 * projection_fit_teacher_reader; the fitted projections must equal the
 * online ones (rel 1e-6: the same rows, fp32 store). */
#include "kd/core/rng.h"
#include "kd/kd/loss_set.h"
#include "kd/parallel/comm.h"
#include "kd/model/hf_config.h"
#include "kd/parallel/layout.h"
#include "kd/stages/extract_common.h"
#include "kd/stages/projection_fit.h"
#include "kd/stages/teacher_reader.h"
#include "../model/bert_testutil.h"
#include "../tap.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { V = 64, MP = 32, T = 16, N_FIT = 96, N_EVAL = 24, NTERM = 2, MAXOUT = 16 };

struct data {
    struct dataset d;
    int32_t ids[N_FIT * T], types[N_FIT * T], mask[N_FIT * T], lengths[N_FIT], labels[N_FIT];
};

static void make_data(struct data *x, int n, uint64_t stream)
{
    memset(x, 0, sizeof *x);
    for (int r = 0; r < n; r++) {
        const int len = 6 + (int)(rng_bits_at(4, stream, (uint64_t)r) % (T - 5));
        x->lengths[r] = len;
        x->labels[r] = r % 2;
        for (int t = 0; t < T; t++) {
            x->ids[r * T + t] =
                t < len ? (int32_t)(rng_bits_at(4, stream + 1, (uint64_t)(r * T + t)) % V) : 0;
            x->mask[r * T + t] = t < len;
        }
    }
    x->d = (struct dataset){.name = "test", .n = n, .max_seq_len = T, .input_ids = x->ids,
                            .token_type_ids = x->types, .attention_mask = x->mask,
                            .lengths = x->lengths, .labels = x->labels};
}

static void make_model(struct bert_model *m, int64_t L, int64_t NH, int64_t HS, int64_t F,
                       int64_t B, uint64_t seed, float std)
{
    struct bert_config cfg;
    bt_tiny_config(&cfg, L, NH, HS, F, V, MP, 2);
    struct bert_opts o = {.B = B, .T = T, .heads = BERT_HEAD_CLASSIFIER};
    struct kd_err err;
    if (bert_init(m, &cfg, &o, &err) != 0)
        bail_out("bert_init: %s", err.msg);
    bert_init_random(m, seed, std);
}

/* The online teacher: forward on the gathered rows, its taps as the view. */
static int online_teacher(void *ctx, const struct batch_rows *b, struct kd_teacher_view *v,
                          struct kd_err *err)
{
    struct bert_model *t = ctx;
    (void)err;
    struct bert_batch bb = batch_rows_view(b, 0, 0, 0);
    bert_forward(t, &bb);
    kd_teacher_view_from_bert(v, t, b->mask, b->labels, NULL);
    return 0;
}

static void losses(struct loss_cfg *l)
{
    static int64_t s_layers[] = {0, 2}, t_layers[] = {0, 4};
    memset(l, 0, NTERM * sizeof *l);
    for (int i = 0; i < NTERM; i++) {
        l[i].kind = LOSS_KIND_HIDDEN;
        l[i].line = 1 + i;
        l[i].weight = 1.0;
        l[i].metric = HIDDEN_METRIC_MSE;
    }
    l[0].map = LAYER_MAP_UNIFORM;
    l[0].tokens = TOKEN_SEL_ALL;
    l[1].map = LAYER_MAP_EXPLICIT;
    l[1].tokens = TOKEN_SEL_CLS;
    l[1].student_layers = (struct int_list){2, s_layers};
    l[1].teacher_layers = (struct int_list){2, t_layers};
}

/* Term values at step 0 on the held-out batch. */
static void eval_terms(double *v, struct kd_loss_set *set, struct bert_model *s,
                       struct bert_model *t, const struct data *ev)
{
    struct batch_rows br;
    int64_t rows[N_EVAL];
    for (int i = 0; i < N_EVAL; i++)
        rows[i] = i;
    if (batch_rows_alloc(&br, N_EVAL, T))
        bail_out("out of memory");
    batch_rows_gather(&br, &ev->d, rows, N_EVAL);
    struct bert_batch bb = batch_rows_view(&br, 0, 0, 0);
    bert_forward(s, &bb);
    struct kd_student_view sv;
    kd_student_view_from_bert(&sv, s);
    struct kd_teacher_view tv;
    struct kd_err err;
    online_teacher(t, &br, &tv, &err);
    struct kd_step st = {.total_steps = 1};
    struct kd_values vals;
    kd_loss_set_compute(set, &sv, &tv, &st, &vals, NULL);
    for (int i = 0; i < NTERM; i++)
        v[i] = vals.term[i];
    batch_rows_free(&br);
}

/* Writes the teacher's outputs over fit to path (collective). */
static void write_store(const char *path, struct bert_model *t, const struct data *fit,
                        const struct kd_needs *nd, const struct comm *c)
{
    struct store_spec spec;
    store_spec_init(&spec);
    spec.n_examples = N_FIT;
    spec.seq_len = T;
    spec.hidden_size = (int32_t)t->cfg.hidden_size;
    spec.model_heads = (int32_t)t->cfg.num_attention_heads;
    spec.num_classes = 2;
    spec.tokens = STORE_TOKENS_ALL;
    spec.lengths = fit->lengths;
    spec.datasets = STORE_BIT(STORE_DS_INPUT_IDS) | STORE_BIT(STORE_DS_TOKEN_TYPE_IDS) |
                    STORE_BIT(STORE_DS_ATTENTION_MASK) | STORE_BIT(STORE_DS_LABELS) |
                    STORE_BIT(STORE_DS_LOGITS) | STORE_BIT(STORE_DS_HIDDEN);
    for (int i = 0; i < nd->n_hidden; i++)
        spec.hidden_layers[spec.n_hidden_layers++] = nd->hidden_layers[i];
    static const char zeros[] = "0000000000000000000000000000000000000000000000000000000000000000";
    struct kd_err err;
    char *json = hf_config_to_json(&t->cfg, NULL, NULL, &err);
    if (!json)
        bail_out("%s", err.msg);
    const struct store_provenance prov = {json, zeros, zeros, zeros, "2025-01-01T00:00:00Z"};
    store_writer_t *w;
    if (store_create(&w, path, c, &spec, &prov, &err))
        bail_out("store_create: %s", err.msg);
    long long begin, end;
    layout_shard(N_FIT, c->rank, c->size, &begin, &end);
    enum { WB = 16 };
    const int64_t calls = ((N_FIT + c->size - 1) / c->size + WB - 1) / WB;
    struct extract_bufs eb;
    struct batch_rows br;
    int64_t rows[WB];
    if (extract_bufs_alloc(&eb, &spec, WB) || batch_rows_alloc(&br, WB, T))
        bail_out("out of memory");
    for (int64_t k = 0, pos = begin; k < calls; k++) {
        const int64_t n = pos + WB <= end ? WB : end - pos;
        struct store_batch sb = {.first = pos, .count = n};
        if (n > 0) {
            for (int64_t i = 0; i < n; i++)
                rows[i] = pos + i;
            batch_rows_gather(&br, &fit->d, rows, n);
            struct bert_batch bb = batch_rows_view(&br, 0, 0, 0);
            bert_forward(t, &bb);
            extract_fill(&eb, &spec, t, &fit->d, pos, n, br.t, &sb);
        }
        if (store_write_batch(w, &sb, &err))
            bail_out("store_write_batch: %s", err.msg);
        pos += n;
    }
    if (store_finish(w, &err))
        bail_out("store_finish: %s", err.msg);
    extract_bufs_free(&eb);
    batch_rows_free(&br);
    free(json);
}

/* max over the set's parameters of |a - b| / max(|b|, 1e-3 max|b|) */
static double params_rel_diff(const struct kd_loss_set *a, const struct kd_loss_set *b)
{
    float *pa, *pb;
    size_t na, nb;
    kd_loss_set_params(a, &pa, NULL, &na, NULL, NULL);
    kd_loss_set_params(b, &pb, NULL, &nb, NULL, NULL);
    if (na != nb || !na)
        return INFINITY;
    double big = 0.0;
    for (size_t i = 0; i < nb; i++)
        big = fmax(big, fabs(pb[i]));
    size_t where;
    return max_rel_err(pa, pb, na, 1e-3 * big, &where);
}

static int compare(const char *fa, const char *fb)
{
    double a[MAXOUT], b[MAXOUT];
    FILE *f = fopen(fa, "r"), *g = fopen(fb, "r");
    int na = 0, nb = 0;
    while (f && na < MAXOUT && fscanf(f, "%lf", &a[na]) == 1)
        na++;
    while (g && nb < MAXOUT && fscanf(g, "%lf", &b[nb]) == 1)
        nb++;
    if (f)
        fclose(f);
    if (g)
        fclose(g);
    ok(na > 0 && na == nb, "both runs wrote their numbers (%d and %d)", na, nb);
    for (int i = 0; i < na && i < nb; i++)
        ok_near(b[i], a[i], 1e-4, 1e-9, "number %d: %.9g vs %.9g", i, a[i], b[i]);
    return done_testing();
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "--compare") == 0)
        return compare(argv[2], argv[3]);
    struct comm c;
    comm_init(&c, &argc, &argv);
    if (argc != 2)
        bail_out("usage: p_kd_projection_fit OUT | --compare A B");
    static struct data fit, ev;
    make_data(&fit, N_FIT, 100);
    make_data(&ev, N_EVAL, 200);
    struct bert_model t, s;
    make_model(&t, 4, 4, 16, 128, N_FIT, 7, 0.1f);
    make_model(&s, 2, 4, 8, 64, N_FIT, 8, 0.1f);

    struct loss_cfg l[NTERM];
    losses(l);
    const struct kd_teacher_dims td = {4, 64, 4, 2};
    struct kd_loss_set rnd, lsq;
    struct kd_err err;
    if (kd_loss_set_init(&rnd, l, NTERM, NULL, &s.cfg, &td, N_FIT, T, 1234, &err) ||
        kd_loss_set_init(&lsq, l, NTERM, NULL, &s.cfg, &td, N_FIT, T, 1234, &err))
        bail_out("kd_loss_set_init: %s", err.msg);

    struct projection_fit_report rep;
    const struct projection_fit_opts po = {.batch = 16, .ridge = -1};
    int rc = projection_fit(&lsq, &s, &fit.d, &c, online_teacher, &t, &po, &rep, &err);
    const int r0 = c.rank == 0;
    if (r0 && !ok(rc == 0, "projection_fit on %d rank(s)", c.size))
        diag("%s", err.msg);
    if (rc)
        bail_out("%s", err.msg);
    if (r0) {
        ok(rep.n == 4, "four projections fitted: two token pairs, two [CLS] pairs (got %d, "
                       "from %lld sampled examples)", rep.n, (long long)rep.examples);
        for (int q = 0; q < rep.n; q++)
            ok(rep.pair[q].mse_after < rep.pair[q].mse_before,
               "losses.[%d] student %d -> teacher %d: MSE on the %lld fit rows %.5f -> %.5f "
               "(R^2 %.3f)", rep.pair[q].term, (int)rep.pair[q].student_layer,
               (int)rep.pair[q].teacher_layer, (long long)rep.pair[q].rows,
               rep.pair[q].mse_before, rep.pair[q].mse_after, rep.pair[q].r2);
    }
    double v_rnd[NTERM], v_lsq[NTERM];
    eval_terms(v_rnd, &rnd, &s, &t, &ev);
    eval_terms(v_lsq, &lsq, &s, &t, &ev);
    static const char *const what[NTERM] = {"token MSE, uniform map",
                                            "[CLS] MSE, explicit map"};
    if (r0)
        for (int i = 0; i < NTERM; i++)
            ok(v_lsq[i] < v_rnd[i],
               "held-out hidden loss [%d] (%s) at step 0: lstsq %.6f < random %.6f (%.1fx lower)",
               i, what[i], v_lsq[i], v_rnd[i], v_rnd[i] / v_lsq[i]);
    /* offline: the same fit through the teacher store */
    char store[4200];
    snprintf(store, sizeof store, "%s.store.h5", argv[1]);
    struct kd_needs nd;
    if (kd_needs_of(&nd, l, NTERM, 2, 4, &err))
        bail_out("%s", err.msg);
    write_store(store, &t, &fit, &nd, &c);
    struct teacher_reader tr;
    struct kd_loss_set off;
    if (teacher_reader_open(&tr, store, NULL, &nd, 16, T, "test", &err) ||
        kd_loss_set_init(&off, l, NTERM, NULL, &s.cfg, &td, N_FIT, T, 1234, &err))
        bail_out("%s", err.msg);
    struct projection_fit_report rep2;
    rc = projection_fit(&off, &s, &fit.d, &c, projection_fit_teacher_reader, &tr, &po, &rep2,
                        &err);
    if (rc)
        bail_out("offline projection_fit: %s", err.msg);
    if (r0) {
        const double diff = params_rel_diff(&off, &lsq);
        ok(rep2.n == rep.n && diff <= 1e-6,
           "the fit through the teacher store (offline) equals the online one (max rel diff "
           "%.2g)", diff);
    }
    teacher_reader_close(&tr);
    kd_loss_set_free(&off);
    comm_barrier(&c);
    if (r0)
        remove(store);
    if (r0) {
        FILE *f = fopen(argv[1], "w");
        if (!f)
            bail_out("cannot write %s", argv[1]);
        for (int i = 0; i < NTERM; i++)
            fprintf(f, "%.17g\n", v_lsq[i]);
        for (int q = 0; q < rep.n; q++)
            fprintf(f, "%.17g\n%.17g\n", rep.pair[q].mse_after, rep.pair[q].r2);
        fclose(f);
    }
    kd_loss_set_free(&rnd);
    kd_loss_set_free(&lsq);
    bert_free(&s);
    bert_free(&t);
    int status = r0 ? done_testing() : 0;
    comm_finalize(&c);
    return status;
}
