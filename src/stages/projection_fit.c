/* projection_fit.c: least-squares initialisation of hidden-loss
 * projections (contract in include/kd/stages/projection_fit.h). The
 * student's and the teacher's rows of each projected pair are collected
 * per rank from that rank's share of the sample, then each pair is one
 * PDGELS over all ranks. */
#include "kd/stages/projection_fit.h"
#include "kd/core/log.h"
#include "kd/init/student_init.h"
#include "kd/parallel/layout.h"
#include "kd/parallel/scalapack.h"
#include "kd/stages/teacher_reader.h"

#include <stdlib.h>
#include <string.h>

int projection_fit_teacher_reader(void *ctx, const struct batch_rows *b,
                                  struct kd_teacher_view *v, struct kd_err *err)
{
    return teacher_reader_batch(ctx, b, v, err);
}

/* One projected pair and this rank's rows of it. */
struct fit_pair {
    int term;
    int cls;                  /* compares [CLS] rows only */
    struct kd_projection proj;
    int64_t n, cap;           /* local rows */
    float *x, *h;             /* (cap, C) student rows, (cap, Ct) teacher rows */
};

static int find_pairs(struct fit_pair *p, int *np, const struct kd_loss_set *set,
                      struct kd_err *err)
{
    *np = 0;
    for (int i = 0; i < set->n; i++) {
        const struct kd_term *t = &set->term[i];
        if (t->cfg.kind != LOSS_KIND_HIDDEN || t->n_tensors == 0)
            continue;
        for (int k = 0; k < t->map.n; k++) {
            if (*np == PROJECTION_FIT_MAX)
                return kd_errf(err, "init_projections: more than %d projections to fit",
                               PROJECTION_FIT_MAX);
            struct fit_pair *f = &p[(*np)++];
            memset(f, 0, sizeof *f);
            f->term = i;
            f->cls = t->cfg.tokens == TOKEN_SEL_CLS;
            if (kd_loss_set_projection(set, i, t->map.pair[k].student, &f->proj, err))
                return -1;
        }
    }
    return 0;
}

/* Examples needed for `rows` fit rows: one row each for [CLS] pairs
 * (cls), about their mean length each for every-token pairs; at most N. */
static int64_t examples_for(const struct dataset *d, int cls, int64_t rows)
{
    if (cls)
        return rows < d->n ? rows : d->n;
    double len = 0.0;
    for (int64_t i = 0; i < d->n; i++)
        len += d->lengths[i];
    len /= (double)d->n;
    const int64_t s = (int64_t)((double)rows / (len > 1.0 ? len : 1.0)) + 1;
    return s < d->n ? s : d->n;
}

/* Whether sample position g (0..S-1) is one of the S_tok positions spread
 * evenly over the sample whose every token is used: those where
 * floor(g S_tok / S) steps. A function of g alone, so every rank count
 * selects the same examples. */
static int token_example(int64_t g, int64_t S, int64_t S_tok)
{
    return g == 0 || (g * S_tok) / S != ((g - 1) * S_tok) / S;
}

/* Appends the rows of batch b (and its teacher view v) to every pair:
 * [CLS] rows of every example, token rows of the examples marked in tok. */
static int take_rows(struct fit_pair *p, int np, const struct bert_model *m,
                     const struct batch_rows *b, const uint8_t *tok,
                     const struct kd_teacher_view *v, const struct kd_loss_set *set,
                     struct kd_err *err)
{
    const int64_t n = b->n, t = b->t;
    for (int q = 0; q < np; q++) {
        struct fit_pair *f = &p[q];
        const int64_t C = f->proj.in, Ct = f->proj.out;
        const float *X = bert_hidden(m, f->proj.student_layer);
        const float *H = v->hidden[f->proj.teacher_layer];
        const int t_all = v->hidden_tokens == TOKEN_SEL_ALL;
        char where[96];
        kd_loss_where(where, sizeof where, set->term[f->term].index, &set->term[f->term].cfg);
        if (!H)
            return kd_errf(err, "init_projections: %s: the teacher gave no hidden states of "
                           "layer %d", where, (int)f->proj.teacher_layer);
        if (!f->cls && !t_all)
            return kd_errf(err, "init_projections: %s compares every token, but the teacher "
                           "gives [CLS] states only (layer %d)", where,
                           (int)f->proj.teacher_layer);
        for (int64_t i = 0; i < n; i++)
            for (int64_t k = 0; k < (f->cls ? 1 : tok[i] ? t : 0); k++) {
                if (!f->cls && !b->mask[i * t + k])
                    continue;
                KD_ASSERT(f->n < f->cap, "projection rows: %lld of %lld", (long long)f->n,
                          (long long)f->cap);
                memcpy(f->x + f->n * C, X + (i * t + k) * C, (size_t)C * sizeof(float));
                memcpy(f->h + f->n * Ct, H + (t_all ? (i * t + k) * Ct : i * Ct),
                       (size_t)Ct * sizeof(float));
                f->n++;
            }
    }
    return 0;
}

/* Forwards this rank's share of the sample (rows, with tok marking the
 * examples whose tokens are used) and collects the rows. */
static int collect(struct fit_pair *p, int np, struct bert_model *m, const struct dataset *d,
                   const int64_t *rows, const uint8_t *tok, int64_t n_local, int64_t batch,
                   projection_teacher_fn teacher, void *tctx, const struct kd_loss_set *set,
                   struct kd_err *err)
{
    int64_t tokens = 0;
    for (int64_t i = 0; i < n_local; i++)
        tokens += tok[i] ? d->lengths[rows[i]] : 0;
    for (int q = 0; q < np; q++) {
        p[q].cap = p[q].cls ? n_local : tokens;
        const size_t cap = (size_t)(p[q].cap > 0 ? p[q].cap : 1);
        p[q].x = malloc(cap * (size_t)p[q].proj.in * sizeof(float));
        p[q].h = malloc(cap * (size_t)p[q].proj.out * sizeof(float));
        if (!p[q].x || !p[q].h)
            return kd_errf(err, "init_projections: out of memory for %lld rows of %lld + %lld "
                           "floats", (long long)p[q].cap, (long long)p[q].proj.in,
                           (long long)p[q].proj.out);
    }
    struct batch_rows br;
    if (batch_rows_alloc(&br, batch, d->max_seq_len))
        return kd_errf(err, "init_projections: out of memory for a batch of %lld",
                       (long long)batch);
    int rc = 0;
    for (int64_t first = 0; first < n_local && rc == 0; first += batch) {
        const int64_t n = n_local - first < batch ? n_local - first : batch;
        batch_rows_gather(&br, d, rows + first, n);
        struct bert_batch bb = batch_rows_view(&br, 0, 0, 0); /* eval: no dropout */
        bert_forward(m, &bb);
        struct kd_teacher_view v;
        rc = teacher(tctx, &br, &v, err) || take_rows(p, np, m, &br, tok + first, &v, set, err)
                 ? -1
                 : 0;
    }
    batch_rows_free(&br);
    return rc;
}

/* Sorts rows (with their marks) by length, shortest first: less padding
 * in each forward. Stable, so the order is the same on every run. */
static void sort_by_length(int64_t *rows, uint8_t *tok, int64_t n, const int32_t *lengths)
{
    for (int64_t i = 1; i < n; i++) {
        const int64_t r = rows[i];
        const uint8_t k = tok[i];
        int64_t j = i;
        for (; j > 0 && lengths[rows[j - 1]] > lengths[r]; j--)
            rows[j] = rows[j - 1], tok[j] = tok[j - 1];
        rows[j] = r, tok[j] = k;
    }
}

/* sum_ranks of v[0..n) in place. */
static void sum_over(const struct comm *c, double *v, int n)
{
    MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, v, n, MPI_DOUBLE, MPI_SUM, c->world));
}

/* Per pair: local rows and SSE of the current projection, summed. */
static void residuals(const struct fit_pair *p, int np, const struct comm *c, double *rows,
                      double *sse)
{
    for (int q = 0; q < np; q++) {
        rows[q] = (double)p[q].n;
        sse[q] = student_projection_sse(p[q].proj.weight, p[q].proj.bias, p[q].x, p[q].h,
                                        p[q].n, p[q].proj.in, p[q].proj.out);
    }
    sum_over(c, rows, np);
    sum_over(c, sse, np);
}

int projection_fit(struct kd_loss_set *set, struct bert_model *student,
                   const struct dataset *train, const struct comm *c,
                   projection_teacher_fn teacher, void *teacher_ctx,
                   const struct projection_fit_opts *opts, struct projection_fit_report *report,
                   struct kd_err *err)
{
    struct fit_pair *p = calloc(PROJECTION_FIT_MAX, sizeof *p);
    int np = 0, rc = -1, local = 0;
    int64_t *rows = NULL;
    uint8_t *tok = NULL;
    double *num = NULL;
    if (report)
        memset(report, 0, sizeof *report);
    if (!p)
        return kd_errf(err, "init_projections: out of memory");
    /* the same on every rank: the set and options are */
    if (find_pairs(p, &np, set, err))
        goto out;
    if (np == 0) {
        rc = 0;
        goto out;
    }
    if (opts->batch < 1 || opts->batch > student->opts.B) {
        kd_errf(err, "init_projections: expected a batch in [1, %lld] (the student's), got "
                "%lld", (long long)student->opts.B, (long long)opts->batch);
        goto out;
    }
    int any_cls = 0, any_all = 0;
    int64_t width = 0;
    for (int q = 0; q < np; q++) {
        any_cls |= p[q].cls;
        any_all |= !p[q].cls;
        width = p[q].proj.in > width ? p[q].proj.in : width;
    }
    int64_t target = opts->rows;
    if (target <= 0)
        target = 4 * (width + 1) > PROJECTION_FIT_MIN_ROWS ? 4 * (width + 1)
                                                           : PROJECTION_FIT_MIN_ROWS;
    const double ridge = opts->ridge >= 0 ? opts->ridge : PROJECTION_FIT_RIDGE;
    /* one sample for every pair: as many examples as the [CLS] pairs need,
     * the every-token pairs using the tokens of an even subset of them */
    const int64_t S_tok = any_all ? examples_for(train, 0, target) : 0;
    const int64_t S_cls = any_cls ? examples_for(train, 1, target) : 0;
    const int64_t S = S_tok > S_cls ? S_tok : S_cls;
    long long begin, end;
    layout_shard(S, c->rank, c->size, &begin, &end);
    const int64_t n_local = end - begin;
    rows = malloc((size_t)(n_local > 0 ? n_local : 1) * sizeof *rows);
    tok = malloc((size_t)(n_local > 0 ? n_local : 1));
    num = malloc(4 * (size_t)np * sizeof *num);
    if (!rows || !tok || !num) {
        kd_errf(err, "init_projections: out of memory");
        local = 1;
    } else {
        for (int64_t i = 0; i < n_local; i++) {
            rows[i] = (begin + i) * train->n / S;
            tok[i] = (uint8_t)(S_tok && token_example(begin + i, S, S_tok));
        }
        sort_by_length(rows, tok, n_local, train->lengths);
        local = collect(p, np, student, train, rows, tok, n_local, opts->batch, teacher,
                        teacher_ctx, set, err) != 0;
    }
    if (comm_agree_max(c, local)) {
        if (!local)
            kd_errf(err, "init_projections: another rank could not collect its rows");
        goto out;
    }
    double *n_rows = num, *before = num + np, *after = num + 2 * np, *r2 = num + 3 * np;
    residuals(p, np, c, n_rows, before);
    struct scalapack_grid g;
    if (scalapack_grid_init(&g, c, 0, err))
        goto out;
    int fit = 0;
    for (int q = 0; q < np && fit == 0; q++) {
        fit = student_fit_projection(p[q].proj.weight, p[q].proj.bias, &r2[q], &g, p[q].x,
                                     p[q].h, p[q].n, p[q].proj.in, p[q].proj.out, ridge, err);
        if (fit) {
            char where[96];
            kd_loss_where(where, sizeof where, set->term[p[q].term].index,
                          &set->term[p[q].term].cfg);
            kd_err_prefix(err, "init_projections: %s, student layer %d -> teacher layer %d",
                          where, (int)p[q].proj.student_layer, (int)p[q].proj.teacher_layer);
        }
    }
    scalapack_grid_free(&g);
    if (fit)
        goto out;
    double dummy[PROJECTION_FIT_MAX];
    residuals(p, np, c, dummy, after);
    for (int q = 0; q < np; q++) {
        const double elems = n_rows[q] * (double)p[q].proj.out;
        before[q] = elems > 0 ? before[q] / elems : 0.0;
        after[q] = elems > 0 ? after[q] / elems : 0.0;
        char where[96];
        kd_loss_where(where, sizeof where, set->term[p[q].term].index,
                      &set->term[p[q].term].cfg);
        log_info0("init_projections: %s: student layer %d -> teacher layer %d fitted by least "
                  "squares on %.0f %s rows of %lld examples: MSE %.4g -> %.4g (R^2 %.3f)",
                  where, (int)p[q].proj.student_layer, (int)p[q].proj.teacher_layer, n_rows[q],
                  p[q].cls ? "[CLS]" : "token", (long long)S, before[q], after[q], r2[q]);
        if (report)
            report->pair[q] = (struct projection_fit_pair){
                .term = set->term[p[q].term].index,
                .student_layer = p[q].proj.student_layer,
                .teacher_layer = p[q].proj.teacher_layer, .rows = (int64_t)n_rows[q],
                .mse_before = before[q], .mse_after = after[q], .r2 = r2[q]};
    }
    if (report) {
        report->n = np;
        report->examples = S;
    }
    rc = 0;
out:
    for (int q = 0; q < np; q++)
        free(p[q].x), free(p[q].h);
    free(p), free(rows), free(tok), free(num);
    return rc;
}
