/* t_threads.c: the engine's own threads change no result (kernels/threads.h).
 *   Every kernel that uses the team, and a whole BERT forward + backward,
 *   runs once on 1 thread and once on 2, and every output and gradient is
 *   compared bit for bit (memcmp; the first differing element is reported).
 *   Sizes are chosen above each kernel's grain so that the 2-thread run does
 *   split the work, with odd widths so that pieces end in vector tails:
 *     gemm split by rows and by columns, accumulating (beta 1) and with a
 *       long K (the weight-gradient shape), and one too small to split whose
 *       value OpenBLAS's own threads would change;
 *     linear forward and backward (the bias gradient is a sum over rows);
 *     GELU forward (bias fused, in place or not) and backward with and
 *       without the bias gradient;
 *     LayerNorm forward, and backward with every gradient, the input
 *       gradient only and the parameter gradients only;
 *     softmax with a key mask and an additive bias, forward and backward;
 *     attention with padding, dropout and injected gradients on probs and
 *       scores, at head sizes 32 and 26 (the student's);
 *     dropout forward, backward and mask over an unaligned length and a
 *       nonzero first index; the residual add; embeddings with repeated ids;
 *     a 2-layer BERT, hidden 256 (classification + MLM heads, dropout 0.1, padded
 *       sequences, token types, injected tap gradients), two steps with an
 *       update in between;
 *     the optimizer: two AdamW steps over odd-sized segments, the squared
 *       gradient norm (chunked, so the same on any team), clearing.
 *   In the 1-thread runs OpenBLAS is kept single-threaded too
 *   (gemm_serial_begin): with more threads its sgemm may block K
 *   differently, and the engine runs the BLAS single-threaded whenever its
 *   own team has more than one thread, so that is the reference.
 *   The contention check is off (threads.h), so that a loaded machine does
 *   not turn the 2-thread runs into 1-thread ones.
 *   Also: threads_split covers [0, n) with aligned interior boundaries, and
 *   the budget is at least the 2 threads asked for.
 * Skipped (exit 77) in a build without OpenMP. */
#include "kd/kernels/attention.h"
#include "kd/kernels/dropout.h"
#include "kd/kernels/elementwise.h"
#include "kd/kernels/embedding.h"
#include "kd/kernels/gelu.h"
#include "kd/kernels/gemm.h"
#include "kd/kernels/layernorm.h"
#include "kd/kernels/linear.h"
#include "kd/kernels/softmax.h"
#include "kd/kernels/threads.h"
#include "kd/core/error.h"
#include "kd/core/log.h"
#include "kd/model/bert.h"
#include "kd/model/hf_config.h"
#include "kd/model/optim.h"
#include "../gradcheck.h"
#include "../tap.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP

/* ---- running a case on 1 and on 2 threads --------------------------- */

#define MAX_OUTS 24

/* The outputs a case writes, compared after the two runs. */
struct outs {
    const char *name[MAX_OUTS];
    const void *p[MAX_OUTS];
    size_t bytes[MAX_OUTS];
    int n;
};

static void out_add(struct outs *o, const char *name, const void *p, size_t bytes)
{
    if (o->n == MAX_OUTS)
        bail_out("t_threads: more than %d outputs", MAX_OUTS);
    o->name[o->n] = name, o->p[o->n] = p, o->bytes[o->n] = bytes;
    o->n++;
}

static void outf(struct outs *o, const char *name, const float *p, int64_t n)
{
    out_add(o, name, p, (size_t)n * sizeof(float));
}

/* One case: run() recomputes every output from the inputs (zeroing the
 * gradients it accumulates into) and lists them in o on its first call. */
typedef void (*case_fn)(void *ctx, struct outs *o);

/* Runs the case on 1 thread, then on 2, and compares every output. */
static void same_on_1_and_2(const char *what, case_fn run, void *ctx)
{
    struct outs o = {0};
    omp_set_num_threads(1);
    const int saved = gemm_serial_begin(2); /* OpenBLAS single-threaded too */
    run(ctx, &o);
    gemm_serial_end(saved);
    void *ref[MAX_OUTS];
    for (int i = 0; i < o.n; i++) {
        ref[i] = malloc(o.bytes[i]);
        memcpy(ref[i], o.p[i], o.bytes[i]);
    }
    struct outs o2 = {0};
    omp_set_num_threads(2);
    run(ctx, &o2);
    int bad = -1;
    size_t at = 0;
    for (int i = 0; i < o.n && bad < 0; i++)
        if (memcmp(ref[i], o.p[i], o.bytes[i]) != 0) {
            bad = i;
            const unsigned char *a = ref[i], *b = o.p[i];
            while (at < o.bytes[i] && a[at] == b[at])
                at++;
        }
    if (!ok(bad < 0, "%s: %d outputs identical on 1 and 2 threads", what, o.n))
        diag("first difference: %s, float %zu", o.name[bad], at / sizeof(float));
    for (int i = 0; i < o.n; i++)
        free(ref[i]);
}

static float *frand(int64_t n, float lo, float hi, uint64_t seed)
{
    float *x = malloc((size_t)n * sizeof(float));
    gc_rand(x, n, lo, hi, seed);
    return x;
}

static void zero(float *x, int64_t n) { memset(x, 0, (size_t)n * sizeof(float)); }

/* ---- gemm and linear ---------------------------------------------------- */

struct gemm_case {
    int64_t M, N, K;
    enum gemm_trans ta, tb;
    float beta;
    float *a, *b, *c, *c0;
};

static void run_gemm(void *p, struct outs *o)
{
    struct gemm_case *g = p;
    memcpy(g->c, g->c0, (size_t)(g->M * g->N) * sizeof(float));
    const int64_t lda = g->ta == GEMM_TRANS_N ? g->K : g->M;
    const int64_t ldb = g->tb == GEMM_TRANS_N ? g->N : g->K;
    gemm(g->c, g->N, g->a, lda, g->b, ldb, g->ta, g->tb, g->M, g->N, g->K, 0.75f, g->beta);
    outf(o, "C", g->c, g->M * g->N);
}

static void test_gemm(int64_t M, int64_t N, int64_t K, enum gemm_trans ta, enum gemm_trans tb,
                      float beta, const char *what)
{
    struct gemm_case g = {M, N, K, ta, tb, beta, frand(M * K, -1, 1, 11),
                          frand(K * N, -1, 1, 12), malloc((size_t)(M * N) * sizeof(float)),
                          frand(M * N, -1, 1, 13)};
    same_on_1_and_2(what, run_gemm, &g);
    free(g.a), free(g.b), free(g.c), free(g.c0);
}

enum { LBT = 515, LIC = 256, LOC = 384 };

struct linear_case {
    float *inp, *w, *b, *out, *dout, *dinp, *dw, *db;
};

static void run_linear(void *p, struct outs *o)
{
    struct linear_case *c = p;
    zero(c->dinp, LBT * LIC), zero(c->dw, LOC * LIC), zero(c->db, LOC);
    linear_forward(c->out, c->inp, c->w, c->b, LBT, LIC, LOC);
    linear_backward(c->dinp, c->dw, c->db, c->dout, c->inp, c->w, LBT, LIC, LOC);
    outf(o, "out", c->out, LBT * LOC), outf(o, "dinp", c->dinp, LBT * LIC);
    outf(o, "dweight", c->dw, LOC * LIC), outf(o, "dbias", c->db, LOC);
}

static void test_linear(void)
{
    struct linear_case c = {frand(LBT * LIC, -1, 1, 21), frand(LOC * LIC, -1, 1, 22),
                            frand(LOC, -1, 1, 23), malloc(LBT * LOC * sizeof(float)),
                            frand(LBT * LOC, -1, 1, 24), malloc(LBT * LIC * sizeof(float)),
                            malloc(LOC * LIC * sizeof(float)), malloc(LOC * sizeof(float))};
    same_on_1_and_2("linear forward + backward", run_linear, &c);
    free(c.inp), free(c.w), free(c.b), free(c.out), free(c.dout), free(c.dinp), free(c.dw);
    free(c.db);
}

/* ---- pointwise kernels ------------------------------------------------ */

enum { GBT = 300, GF = 515 };

struct gelu_case {
    float *inp, *bias, *pre, *pre2, *out, *out2, *dout, *dinp, *dinp2, *db;
};

static void run_gelu(void *p, struct outs *o)
{
    struct gelu_case *c = p;
    const int64_t n = GBT * GF;
    memcpy(c->pre2, c->inp, (size_t)n * sizeof(float));
    gelu_forward(c->out, c->pre, c->inp, c->bias, GBT, GF);
    gelu_forward(c->out2, c->pre2, c->pre2, c->bias, GBT, GF); /* in place */
    zero(c->dinp, n), zero(c->dinp2, n), zero(c->db, GF);
    gelu_backward(c->dinp, c->db, c->dout, c->pre, GBT, GF);
    gelu_backward(c->dinp2, NULL, c->dout, c->pre, GBT, GF);
    outf(o, "out", c->out, n), outf(o, "pre", c->pre, n), outf(o, "out in place", c->out2, n);
    outf(o, "dinp", c->dinp, n), outf(o, "dbias", c->db, GF);
    outf(o, "dinp without dbias", c->dinp2, n);
}

static void test_gelu(void)
{
    const int64_t n = GBT * GF;
    struct gelu_case c = {frand(n, -4, 4, 31), frand(GF, -1, 1, 32),
                          malloc(n * sizeof(float)), malloc(n * sizeof(float)),
                          malloc(n * sizeof(float)), malloc(n * sizeof(float)),
                          frand(n, -1, 1, 33), malloc(n * sizeof(float)),
                          malloc(n * sizeof(float)), malloc(GF * sizeof(float))};
    same_on_1_and_2("gelu forward + backward", run_gelu, &c);
    free(c.inp), free(c.bias), free(c.pre), free(c.pre2), free(c.out), free(c.out2);
    free(c.dout), free(c.dinp), free(c.dinp2), free(c.db);
}

enum { NBT = 300, NC = 257 };

struct ln_case {
    float *inp, *w, *b, *out, *mean, *rstd, *dout;
    float *dinp, *dw, *db, *dinp2, *dw3, *db3;
};

static void run_layernorm(void *p, struct outs *o)
{
    struct ln_case *c = p;
    const int64_t n = NBT * NC;
    layernorm_forward(c->out, c->mean, c->rstd, c->inp, c->w, c->b, NBT, NC, 1e-12f);
    zero(c->dinp, n), zero(c->dw, NC), zero(c->db, NC);
    zero(c->dinp2, n), zero(c->dw3, NC), zero(c->db3, NC);
    layernorm_backward(c->dinp, c->dw, c->db, c->dout, c->inp, c->mean, c->rstd, c->w, NBT, NC);
    layernorm_backward(c->dinp2, NULL, NULL, c->dout, c->inp, c->mean, c->rstd, c->w, NBT, NC);
    layernorm_backward(NULL, c->dw3, c->db3, c->dout, c->inp, c->mean, c->rstd, c->w, NBT, NC);
    outf(o, "out", c->out, n), outf(o, "mean", c->mean, NBT), outf(o, "rstd", c->rstd, NBT);
    outf(o, "dinp", c->dinp, n), outf(o, "dweight", c->dw, NC), outf(o, "dbias", c->db, NC);
    outf(o, "dinp alone", c->dinp2, n);
    outf(o, "dweight alone", c->dw3, NC), outf(o, "dbias alone", c->db3, NC);
}

static void test_layernorm(void)
{
    const int64_t n = NBT * NC;
    struct ln_case c = {frand(n, -3, 5, 41), frand(NC, 0.5f, 1.5f, 42), frand(NC, -1, 1, 43),
                        malloc(n * sizeof(float)), malloc(NBT * sizeof(float)),
                        malloc(NBT * sizeof(float)), frand(n, -1, 1, 44),
                        malloc(n * sizeof(float)), malloc(NC * sizeof(float)),
                        malloc(NC * sizeof(float)), malloc(n * sizeof(float)),
                        malloc(NC * sizeof(float)), malloc(NC * sizeof(float))};
    same_on_1_and_2("layernorm forward + backward (all, input-only, parameter-only)",
                    run_layernorm, &c);
    free(c.inp), free(c.w), free(c.b), free(c.out), free(c.mean), free(c.rstd), free(c.dout);
    free(c.dinp), free(c.dw), free(c.db), free(c.dinp2), free(c.dw3), free(c.db3);
}

enum { SR = 512, SN = 130, SRPM = 64 };

struct softmax_case {
    float *inp, *bias, *probs, *probs2, *dprobs, *dinp;
    int32_t *keep;
};

static void run_softmax(void *p, struct outs *o)
{
    struct softmax_case *c = p;
    softmax_forward(c->probs, c->inp, c->keep, NULL, SR, SN, SRPM);
    softmax_forward(c->probs2, c->inp, NULL, c->bias, SR, SN, SRPM);
    zero(c->dinp, SR * SN);
    softmax_backward(c->dinp, c->dprobs, c->probs, SR, SN);
    outf(o, "probs (keep mask)", c->probs, SR * SN);
    outf(o, "probs (additive mask)", c->probs2, SR * SN), outf(o, "dinp", c->dinp, SR * SN);
}

static void test_softmax(void)
{
    struct softmax_case c = {frand(SR * SN, -5, 5, 51), frand(SR / SRPM * SN, -3, 0, 52),
                             malloc(SR * SN * sizeof(float)), malloc(SR * SN * sizeof(float)),
                             frand(SR * SN, -1, 1, 53), malloc(SR * SN * sizeof(float)),
                             malloc(SR / SRPM * SN * sizeof(int32_t))};
    for (int64_t i = 0; i < SR / SRPM * SN; i++)
        c.keep[i] = i % SN < SN - 7 * (i / SN);
    same_on_1_and_2("softmax forward + backward", run_softmax, &c);
    free(c.inp), free(c.bias), free(c.probs), free(c.probs2), free(c.dprobs), free(c.dinp);
    free(c.keep);
}

enum { DN = 100003 };

struct drop_case {
    float *inp, *out, *inplace, *dout, *dinp, *mask;
    float *ra, *rb, *rout, *rda, *rdb;
    struct dropout_spec d;
};

static void run_dropout(void *p, struct outs *o)
{
    struct drop_case *c = p;
    dropout_forward(c->out, c->inp, c->d, DN);
    memcpy(c->inplace, c->inp, DN * sizeof(float));
    dropout_forward(c->inplace, c->inplace, c->d, DN);
    zero(c->dinp, DN);
    dropout_backward(c->dinp, c->dout, c->d, DN);
    dropout_mask(c->mask, c->d, DN);
    residual_forward(c->rout, c->ra, c->rb, DN);
    zero(c->rda, DN), zero(c->rdb, DN);
    residual_backward(c->rda, c->rdb, c->dout, DN);
    outf(o, "dropout out", c->out, DN), outf(o, "dropout in place", c->inplace, DN);
    outf(o, "dropout dinp", c->dinp, DN), outf(o, "dropout mask", c->mask, DN);
    outf(o, "residual out", c->rout, DN), outf(o, "residual da", c->rda, DN);
    outf(o, "residual db", c->rdb, DN);
}

static void test_dropout_residual(void)
{
    struct drop_case c = {frand(DN, -1, 1, 61), malloc(DN * sizeof(float)),
                          malloc(DN * sizeof(float)), frand(DN, -1, 1, 62),
                          malloc(DN * sizeof(float)), malloc(DN * sizeof(float)),
                          frand(DN, -1, 1, 63), frand(DN, -1, 1, 64),
                          malloc(DN * sizeof(float)), malloc(DN * sizeof(float)),
                          malloc(DN * sizeof(float)),
                          {.p = 0.1f, .seed = 5, .offset = 77, .first = 12345}};
    same_on_1_and_2("dropout forward, backward, mask; residual forward, backward",
                    run_dropout, &c);
    free(c.inp), free(c.out), free(c.inplace), free(c.dout), free(c.dinp), free(c.mask);
    free(c.ra), free(c.rb), free(c.rout), free(c.rda), free(c.rdb);
}

enum { EB = 4, ET = 64, EC = 260, EV = 50, ETV = 2 };

struct emb_case {
    int32_t ids[EB * ET], types[EB * ET];
    float *wte, *wpe, *wtt, *out, *dout, *dwte, *dwpe, *dwtt;
};

static void run_embedding(void *p, struct outs *o)
{
    struct emb_case *c = p;
    embedding_forward(c->out, c->ids, c->types, c->wte, c->wpe, c->wtt, EB, ET, EC, EV, ETV);
    zero(c->dwte, EV * EC), zero(c->dwpe, ET * EC), zero(c->dwtt, ETV * EC);
    embedding_backward(c->dwte, c->dwpe, c->dwtt, c->dout, c->ids, c->types, EB, ET, EC, EV,
                       ETV);
    outf(o, "out", c->out, EB * ET * EC), outf(o, "dword", c->dwte, EV * EC);
    outf(o, "dposition", c->dwpe, ET * EC), outf(o, "dtype", c->dwtt, ETV * EC);
}

static void test_embedding(void)
{
    struct emb_case *c = calloc(1, sizeof *c);
    for (int i = 0; i < EB * ET; i++) {
        c->ids[i] = (i * 7 + i / 3) % EV; /* ids repeat within and across sequences */
        c->types[i] = (i % ET) > ET / 2;
    }
    c->wte = frand(EV * EC, -1, 1, 71), c->wpe = frand(ET * EC, -1, 1, 72);
    c->wtt = frand(ETV * EC, -1, 1, 73), c->dout = frand(EB * ET * EC, -1, 1, 74);
    c->out = malloc(EB * ET * EC * sizeof(float)), c->dwte = malloc(EV * EC * sizeof(float));
    c->dwpe = malloc(ET * EC * sizeof(float)), c->dwtt = malloc(ETV * EC * sizeof(float));
    same_on_1_and_2("embedding forward + backward (repeated ids)", run_embedding, c);
    free(c->wte), free(c->wpe), free(c->wtt), free(c->dout), free(c->out), free(c->dwte);
    free(c->dwpe), free(c->dwtt), free(c);
}

/* ---- attention ------------------------------------------------------------ */

struct attn_case {
    int64_t B, T, NH, HS;
    int32_t *mask;
    float *qkv, *ctx, *probs, *dctx, *dprobs, *dscores, *dqkv, *scratch;
    struct dropout_spec drop;
};

static void run_attention(void *p, struct outs *o)
{
    struct attn_case *c = p;
    const int64_t nqkv = c->B * c->T * 3 * c->NH * c->HS;
    attention_forward(c->ctx, c->probs, c->qkv, c->mask, c->drop, c->scratch, c->B, c->T,
                      c->NH, c->HS);
    zero(c->dqkv, nqkv);
    attention_backward(c->dqkv, c->dctx, c->dprobs, NULL, c->probs, c->qkv, c->mask, c->drop,
                       c->scratch, c->B, c->T, c->NH, c->HS);
    /* the injected score gradient takes the path without the key extent */
    attention_backward(c->dqkv, c->dctx, NULL, c->dscores, c->probs, c->qkv, c->mask, c->drop,
                       c->scratch, c->B, c->T, c->NH, c->HS);
    outf(o, "ctx", c->ctx, c->B * c->T * c->NH * c->HS);
    outf(o, "probs", c->probs, c->B * c->NH * c->T * c->T), outf(o, "dqkv", c->dqkv, nqkv);
}

static void test_attention(int64_t B, int64_t T, int64_t NH, int64_t HS)
{
    struct attn_case c = {.B = B, .T = T, .NH = NH, .HS = HS};
    const int64_t nqkv = B * T * 3 * NH * HS, nctx = B * T * NH * HS, natt = B * NH * T * T;
    c.mask = malloc((size_t)(B * T) * sizeof(int32_t));
    for (int64_t b = 0; b < B; b++) /* right padding, one sequence all padding */
        for (int64_t t = 0; t < T; t++)
            c.mask[b * T + t] = b != 1 && t < T - 5 * b;
    c.qkv = frand(nqkv, -1, 1, 81), c.dctx = frand(nctx, -1, 1, 82);
    c.dprobs = frand(natt, -1, 1, 83), c.dscores = frand(natt, -1, 1, 84);
    c.ctx = malloc(nctx * sizeof(float)), c.probs = malloc(natt * sizeof(float));
    c.dqkv = malloc(nqkv * sizeof(float));
    c.scratch = malloc((size_t)attention_scratch_floats(T) * sizeof(float));
    c.drop = (struct dropout_spec){.p = 0.1f, .seed = 3, .offset = 9, .first = 1000};
    char what[128];
    snprintf(what, sizeof what,
             "attention B%lld T%lld NH%lld HS%lld, padding, dropout, injected gradients",
             (long long)B, (long long)T, (long long)NH, (long long)HS);
    same_on_1_and_2(what, run_attention, &c);
    free(c.mask), free(c.qkv), free(c.dctx), free(c.dprobs), free(c.dscores), free(c.ctx);
    free(c.probs), free(c.dqkv), free(c.scratch);
}

/* ---- a whole model -------------------------------------------------------- */

enum { MB = 4, MT = 64, MC = 256, ML = 2, MNH = 4, MF = 512, MV = 300, MP = 4, MK = 3 };

struct model_case {
    struct bert_model m;
    int32_t ids[MB * MT], types[MB * MT], mask[MB * MT], labels[MB];
    int32_t pos[MB * MP], mlm_labels[MB * MP];
    float *dprobs, *dscores, *dhidden;
    float *params0; /* the parameters every run starts from */
    float *rec;     /* what both steps produced, concatenated */
    int64_t rec_n;
};

/* Appends n floats to the record at *at. */
static void rec(struct model_case *c, int64_t *at, const float *x, int64_t n)
{
    KD_ASSERT(*at + n <= c->rec_n, "record of %lld floats overflows", (long long)c->rec_n);
    memcpy(c->rec + *at, x, (size_t)n * sizeof(float));
    *at += n;
}

/* Two training steps (forward, losses, backward, a plain SGD update), all
 * of each step's outputs appended to the record. */
static void run_model(void *p, struct outs *o)
{
    struct model_case *c = p;
    struct bert_model *m = &c->m;
    const int64_t P = (int64_t)m->ptab.floats;
    float *params = (float *)(void *)m->params_arena.base;
    float *grads = (float *)(void *)m->grads_arena.base;
    memcpy(params, c->params0, (size_t)P * sizeof(float));
    int64_t at = 0;
    for (int step = 0; step < 2; step++) {
        struct bert_batch b = {.B = MB, .T = MT, .input_ids = c->ids, .token_type_ids = c->types,
                               .attention_mask = c->mask, .P = MP, .mlm_positions = c->pos,
                               .train = 1, .first_example = 5, .step = (uint64_t)step};
        bert_zero_grads(m);
        bert_forward(m, &b);
        const float loss[2] = {
            (float)bert_loss_classification(m, c->labels, m->ga.dlogits, 1.0f),
            (float)bert_loss_mlm(m, c->mlm_labels, m->ga.dmlm_logits, 0.5f)};
        struct bert_grad_in gin;
        memset(&gin, 0, sizeof gin);
        gin.dlogits = m->ga.dlogits, gin.dmlm_logits = m->ga.dmlm_logits;
        gin.dprobs[0] = c->dprobs, gin.dscores[ML - 1] = c->dscores;
        gin.dhidden[1] = c->dhidden;
        bert_backward(m, &gin);
        rec(c, &at, loss, 2);
        rec(c, &at, bert_logits(m), MB * MK);
        rec(c, &at, bert_mlm_logits(m), MB * MP * MV);
        for (int64_t l = 0; l <= ML; l++)
            rec(c, &at, bert_hidden(m, l), MB * MT * MC);
        for (int64_t l = 0; l < ML; l++)
            rec(c, &at, bert_probs(m, l), MB * MNH * MT * MT);
        rec(c, &at, grads, P);
        rec(c, &at, m->d_embedding_output, MB * MT * MC);
        for (int64_t i = 0; i < P; i++)
            params[i] -= 0.05f * grads[i];
    }
    outf(o, "losses, logits, taps, gradients and d h_0 of two steps", c->rec, at);
}

static void test_model(void)
{
    struct bert_config cfg;
    hf_config_defaults(&cfg);
    cfg.vocab_size = MV, cfg.hidden_size = MC, cfg.num_hidden_layers = ML;
    cfg.num_attention_heads = MNH, cfg.intermediate_size = MF;
    cfg.max_position_embeddings = 128, cfg.type_vocab_size = 2;
    cfg.hidden_dropout_prob = 0.1, cfg.attention_probs_dropout_prob = 0.1;
    cfg.classifier_dropout = -1.0, cfg.num_labels = MK;
    cfg.problem = BERT_PROBLEM_CLASSIFICATION;
    hf_config_init_layers(&cfg);
    struct model_case *c = calloc(1, sizeof *c);
    struct bert_opts opts = {.B = MB, .T = MT, .P = MP,
                             .heads = BERT_HEAD_CLASSIFIER | BERT_HEAD_MLM, .backward = 1,
                             .param_grads = 1, .seed = 17};
    struct kd_err err;
    if (bert_init(&c->m, &cfg, &opts, &err) != 0)
        bail_out("bert_init: %s", err.msg);
    bert_init_random(&c->m, 42, 0.02f);
    const int64_t P = (int64_t)c->m.ptab.floats;
    c->params0 = malloc((size_t)P * sizeof(float));
    memcpy(c->params0, c->m.params_arena.base, (size_t)P * sizeof(float));
    for (int64_t b = 0; b < MB; b++) {
        const int64_t len = MT - 9 * b; /* right padding */
        for (int64_t t = 0; t < MT; t++) {
            c->ids[b * MT + t] = t < len ? (int32_t)(1 + (b * 131 + t * 17) % (MV - 1)) : 0;
            c->types[b * MT + t] = t > len / 2;
            c->mask[b * MT + t] = t < len;
        }
        c->labels[b] = (int32_t)(b % MK);
        for (int64_t q = 0; q < MP; q++) {
            c->pos[b * MP + q] = b == 0 && q == MP - 1 ? -1 : (int32_t)((b * 5 + q * 11) % MT);
            c->mlm_labels[b * MP + q] = c->pos[b * MP + q] < 0 ? -100 : (int32_t)(q * 37 % MV);
        }
    }
    c->dprobs = frand(MB * MNH * MT * MT, -1e-3f, 1e-3f, 91);
    c->dscores = frand(MB * MNH * MT * MT, -1e-3f, 1e-3f, 92);
    c->dhidden = frand(MB * MT * MC, -1e-3f, 1e-3f, 93);
    c->rec_n = 2 * (2 + MB * MK + MB * MP * MV + (ML + 1) * MB * MT * MC +
                    ML * MB * MNH * MT * MT + P + MB * MT * MC);
    c->rec = malloc((size_t)c->rec_n * sizeof(float));
    same_on_1_and_2("BERT 2 x 256, 4 heads, FFN 512, B 4, T 64: two training steps",
                    run_model, c);
    bert_free(&c->m);
    free(c->params0), free(c->dprobs), free(c->dscores), free(c->dhidden), free(c->rec), free(c);
}

/* ---- optimizer: AdamW update, gradient norm, clearing ---------------------- */

enum { OPT_NSEG = 6 };

struct optim_case {
    struct optim_segment segs[OPT_NSEG];
    size_t count;
    float *p0, *g, *params, *m, *v, *cleared;
    double sumsq;
};

/* Two AdamW steps from the same start, the squared gradient norm, and a
 * cleared buffer. */
static void run_optim(void *p, struct outs *o)
{
    struct optim_case *c = p;
    struct optim_config cfg;
    optim_config_default(&cfg, OPTIM_KIND_ADAMW);
    struct optim opt;
    struct kd_err err;
    if (optim_init(&opt, &cfg, c->segs, OPT_NSEG, c->m, c->v, c->count, &err) != 0)
        bail_out("optim_init: %s", err.msg);
    memcpy(c->params, c->p0, c->count * sizeof(float));
    optim_step(&opt, c->params, c->g, 1e-3, 0.75f);
    optim_step(&opt, c->params, c->g, 2e-3, 1.0f);
    c->sumsq = optim_grad_sumsq(c->g, c->segs, OPT_NSEG);
    memcpy(c->cleared, c->g, c->count * sizeof(float));
    optim_grad_zero(c->cleared, (int64_t)c->count);
    outf(o, "parameters", c->params, (int64_t)c->count);
    outf(o, "first moments", c->m, (int64_t)c->count);
    outf(o, "second moments", c->v, (int64_t)c->count);
    out_add(o, "squared gradient norm", &c->sumsq, sizeof c->sumsq);
    outf(o, "cleared gradients", c->cleared, (int64_t)c->count);
}

static void test_optim(void)
{
    /* odd segment sizes (tails inside every split), one large enough for
     * the norm's grain, decayed and not, one empty, and a gap before the
     * last that no segment covers */
    static const size_t sizes[OPT_NSEG] = {600001, 17, 0, 70003, 312, 140007};
    struct optim_case c = {0};
    size_t at = 0;
    for (int i = 0; i < OPT_NSEG; i++) {
        at += i == OPT_NSEG - 1 ? 5 : 0;
        c.segs[i] = (struct optim_segment){.offset = at, .count = sizes[i], .decay = i % 2 == 0,
                                           .name = "t"};
        at += sizes[i];
    }
    c.count = at;
    c.p0 = frand((int64_t)at, -1.0f, 1.0f, 71);
    c.g = frand((int64_t)at, -0.1f, 0.1f, 72);
    c.params = malloc(at * sizeof(float)), c.m = malloc(at * sizeof(float));
    c.v = malloc(at * sizeof(float)), c.cleared = malloc(at * sizeof(float));
    same_on_1_and_2("AdamW steps, gradient norm and clearing over 900k floats", run_optim, &c);
    long double ref = 0.0L;
    for (int i = 0; i < OPT_NSEG; i++)
        for (size_t k = 0; k < c.segs[i].count; k++)
            ref += (long double)c.g[c.segs[i].offset + k] * c.g[c.segs[i].offset + k];
    const double rel = fabs((double)((c.sumsq - ref) / ref));
    ok(rel < 1e-13, "chunked squared norm equals a long-double sum (rel err %.2g < 1e-13)",
       rel);
    size_t nonzero = 0;
    for (size_t k = 0; k < at; k++)
        nonzero += c.cleared[k] != 0.0f;
    ok(nonzero == 0, "optim_grad_zero clears every element (%zu left)", nonzero);
    free(c.p0), free(c.g), free(c.params), free(c.m), free(c.v), free(c.cleared);
}

/* ---- work splitting ---------------------------------------------------------- */

static void test_split(void)
{
    int bad = 0;
    for (int64_t n = 0; n < 300; n += 7)
        for (int parts = 1; parts <= 5; parts++)
            for (int64_t align = 1; align <= 64; align *= 4) {
                int64_t expect = 0;
                for (int i = 0; i < parts; i++) {
                    int64_t lo, hi;
                    threads_split(n, parts, i, align, &lo, &hi);
                    bad += lo != expect || hi < lo || (i < parts - 1 && hi % align != 0);
                    expect = hi;
                }
                bad += expect != n;
            }
    ok(bad == 0, "threads_split: contiguous pieces covering [0, n), aligned inside (%d bad)",
       bad);
}

int main(void)
{
    log_set_level(LOG_LEVEL_ERROR);
    /* before anything sizes a buffer: the kernels' budget is fixed then */
    setenv("OMP_NUM_THREADS", "2", 1);
    omp_set_num_threads(2);
    if (!ok(threads_max() >= 2, "the kernels' thread budget is %d (>= 2)", threads_max()))
        bail_out("cannot test 2 threads");
    /* a loaded machine must not quietly turn the 2-thread runs into 1 */
    threads_set_contention_check(0);
    ok(threads_team(1 << 20, 1) == 2, "a large loop gets a team of 2 (got %d)",
       threads_team(1 << 20, 1));
    test_split();
    test_gemm(515, 384, 300, GEMM_TRANS_N, GEMM_TRANS_T, 0.0f, "gemm NT split by rows");
    test_gemm(100, 1000, 200, GEMM_TRANS_N, GEMM_TRANS_N, 1.0f,
              "gemm NN split by columns, accumulating");
    test_gemm(256, 260, 1030, GEMM_TRANS_T, GEMM_TRANS_N, 1.0f,
              "gemm TN with long K (weight gradient), accumulating");
    /* too small to split, and a shape whose value multi-threaded OpenBLAS
     * changes: the 2-thread engine must still call the BLAS single-threaded */
    test_gemm(15, 312, 1000, GEMM_TRANS_N, GEMM_TRANS_N, 0.0f,
              "gemm NN 15 x 312 x 1000, not split");
    test_linear();
    test_gelu();
    test_layernorm();
    test_softmax();
    test_dropout_residual();
    test_embedding();
    test_attention(4, 64, 4, 32);
    test_attention(3, 61, 12, 26);
    test_model();
    test_optim();
    return done_testing();
}

#else /* no OpenMP */

int main(void)
{
    skip_all("built without OpenMP: the kernels run on one thread");
}

#endif
