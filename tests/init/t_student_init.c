/* t_student_init.c: the serial parts of init/student_init.h: the layer map,
 * teacher-layer copies (bit-exact tensors, and a full-depth copy whose
 * forward equals the teacher's bit for bit), refusals that name the sizes,
 * and the rank-r factorisation behind the PCA head projection (exact at
 * full rank; at rank r its error equals the discarded singular values,
 * Eckart-Young, to 1e-10). The ScaLAPACK-backed parts are tested over MPI
 * in tests/mpi/p_linalg_init.c. */
#include "kd/init/lowrank.h"
#include "kd/init/student_init.h"
#include "kd/core/rng.h"
#include "../model/bert_testutil.h"
#include "../tap.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { V = 50, MP = 16, B = 3, T = 7 };

static void make(struct bert_model *m, int64_t L, int64_t NH, int64_t HS, int64_t F)
{
    struct bert_config cfg;
    bt_tiny_config(&cfg, L, NH, HS, F, V, MP, 3);
    struct bert_opts o = {.B = B, .T = T, .heads = BERT_HEAD_CLASSIFIER | BERT_HEAD_MLM,
                          .P = 2};
    struct kd_err err;
    if (bert_init(m, &cfg, &o, &err) != 0)
        bail_out("bert_init: %s", err.msg);
}

static void test_layer_map(void)
{
    int64_t map[12];
    struct kd_err err;
    int rc = student_layer_map(map, NULL, 0, 6, 12, &err);
    int want = rc == 0;
    for (int j = 0; j < 6; j++)
        want &= map[j] == 2 * (j + 1);
    ok(want, "uniform map 12 -> 6 is 2, 4, ..., 12 (METHODS.md §2)");
    rc = student_layer_map(map, NULL, 0, 3, 4, &err);
    ok(rc == 0 && map[0] == 1 && map[1] == 2 && map[2] == 4, "uniform map 4 -> 3 is 1, 2, 4");
    int64_t bad[2] = {1, 5};
    rc = student_layer_map(map, bad, 2, 2, 4, &err);
    ok(rc == -1 && strstr(err.msg, "element 1") && strstr(err.msg, "[1, 4]") &&
       strstr(err.msg, "got 5"), "a teacher layer out of range is named: %s", err.msg);
    rc = student_layer_map(map, bad, 1, 2, 4, &err);
    ok(rc == -1 && strstr(err.msg, "expected 2") && strstr(err.msg, "got 1"),
       "a list of the wrong length is refused: %s", err.msg);
}

/* Byte-equal tensors of student layer j and teacher layer l. */
static int layer_equal(const struct bert_model *s, int64_t j, const struct bert_model *t,
                       int64_t l)
{
    int64_t C = s->cfg.hidden_size, CH = s->cfg.layer_heads[j] * s->HS;
    int64_t F = s->cfg.layer_intermediate[j];
    const struct bert_layer_params *a = &s->p.layer[j], *b = &t->p.layer[l];
#define EQ(f, n) (memcmp(a->f, b->f, (size_t)(n) * sizeof(float)) == 0)
    return EQ(qkv_w, 3 * CH * C) && EQ(qkv_b, 3 * CH) && EQ(attn_out_w, C * CH) &&
           EQ(attn_out_b, C) && EQ(attn_ln_w, C) && EQ(attn_ln_b, C) && EQ(ffn_in_w, F * C) &&
           EQ(ffn_in_b, F) && EQ(ffn_out_w, C * F) && EQ(ffn_out_b, C) && EQ(ffn_ln_w, C) &&
           EQ(ffn_ln_b, C);
#undef EQ
}

static void test_teacher_layers(void)
{
    struct bert_model t, s, full;
    struct kd_err err;
    make(&t, 4, 4, 8, 64);
    bert_init_random(&t, 1, 0.2f); /* large std: layers that differ clearly */
    make(&s, 2, 4, 8, 64);
    int rc = student_init_teacher_layers(&s, &t, NULL, 0, 7, &err);
    ok(rc == 0, "teacher_layers 4 -> 2 (uniform map)");
    ok(layer_equal(&s, 0, &t, 1) && layer_equal(&s, 1, &t, 3),
       "student layers 0, 1 are teacher layers 2, 4 byte for byte");
    int64_t C = 32;
    ok(memcmp(s.p.word_emb, t.p.word_emb, V * C * 4) == 0 &&
       memcmp(s.p.pos_emb, t.p.pos_emb, MP * C * 4) == 0 &&
       memcmp(s.p.emb_ln_w, t.p.emb_ln_w, C * 4) == 0 &&
       memcmp(s.p.pool_w, t.p.pool_w, C * C * 4) == 0 &&
       memcmp(s.p.cls_w, t.p.cls_w, 3 * C * 4) == 0 &&
       memcmp(s.p.mlm_bias, t.p.mlm_bias, V * 4) == 0,
       "embeddings, pooler, classifier and MLM head copied");

    int64_t every[4] = {1, 2, 3, 4};
    make(&full, 4, 4, 8, 64);
    rc = student_init_teacher_layers(&full, &t, every, 4, 9, &err);
    int32_t ids[B * T], mask[B * T];
    for (int i = 0; i < B * T; i++) {
        ids[i] = (int32_t)(rng_bits_at(3, 0, (uint64_t)i) % V);
        mask[i] = i % T < T - (i / T); /* rows of 7, 6, 5 real tokens */
    }
    struct bert_batch bt = {.B = B, .T = T, .input_ids = ids, .attention_mask = mask};
    bert_forward(&t, &bt);
    bert_forward(&full, &bt);
    int same = rc == 0;
    for (int l = 0; l <= 4; l++)
        same &= memcmp(bert_hidden(&t, l), bert_hidden(&full, l), B * T * C * 4) == 0;
    same &= memcmp(bert_logits(&t), bert_logits(&full), B * 3 * 4) == 0;
    ok(same, "a full-depth copy reproduces every hidden state and the logits bit for bit");

    /* refusals name both sizes */
    struct bert_model narrow, heads, ffn;
    make(&narrow, 2, 4, 4, 64);
    rc = student_init_teacher_layers(&narrow, &t, NULL, 0, 7, &err);
    ok(rc == -1 && strstr(err.msg, "(32)") && strstr(err.msg, "got 16") &&
       strstr(err.msg, "pca"), "a narrower student is refused with both widths: %s", err.msg);
    make(&heads, 2, 2, 16, 64);
    rc = student_init_teacher_layers(&heads, &t, NULL, 0, 7, &err);
    ok(rc == -1 && strstr(err.msg, "head size 8") && strstr(err.msg, "got 16"),
       "another head size is refused: %s", err.msg);
    make(&ffn, 2, 4, 8, 32);
    rc = student_init_teacher_layers(&ffn, &t, NULL, 0, 7, &err);
    ok(rc == -1 && strstr(err.msg, "FFN width 32") && strstr(err.msg, "has 4 and 64"),
       "another FFN width is refused naming the layer: %s", err.msg);
    bert_free(&narrow), bert_free(&heads), bert_free(&ffn);
    bert_free(&t), bert_free(&s), bert_free(&full);
}

static void test_lowrank(void)
{
    enum { H = 6, M = 10, N = 9 };
    double a[H * M], b[H * N], as[H * M], bs[H * N], m[M * N], mr[M * N];
    float f[H * (M + N)];
    rng_normal(f, 0, 1, 5, 0, 0, H * (M + N));
    for (int i = 0; i < H * M; i++)
        a[i] = f[i];
    for (int i = 0; i < H * N; i++)
        b[i] = f[H * M + i];
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            m[i * N + j] = 0;
            for (int t = 0; t < H; t++)
                m[i * N + j] += a[t * M + i] * b[t * N + j];
        }
    /* singular values of M from the eigenvalues of M^T M (N x N) */
    double g[N * N] = {0}, w[N], v[N * N];
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++)
            for (int t = 0; t < M; t++)
                g[i * N + j] += m[t * N + i] * m[t * N + j];
    lowrank_jacobi_eig(g, N, w, v);
    for (int i = 0; i < N; i++)
        for (int j = i; j > 0 && w[j] > w[j - 1]; j--) {
            double x = w[j];
            w[j] = w[j - 1], w[j - 1] = x;
        }
    double total = 0;
    for (int i = 0; i < N; i++)
        total += w[i];
    for (int r = H; r >= 2; r -= 2) {
        double fro = lowrank_factor(as, bs, a, b, H, M, N, r);
        double err2 = 0, tail = 0;
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++) {
                mr[i * N + j] = 0;
                for (int t = 0; t < r; t++)
                    mr[i * N + j] += as[t * M + i] * bs[t * N + j];
                err2 += (m[i * N + j] - mr[i * N + j]) * (m[i * N + j] - mr[i * N + j]);
            }
        for (int i = r; i < N; i++)
            tail += fmax(w[i], 0);
        ok_near(fro, sqrt(total), 1e-12, 0, "rank %d: returned ||M||_F", r);
        ok(fabs(err2 - tail) <= 1e-10 * total, "rank %d: ||M - As^T Bs||^2 = %.6g = sum of "
           "discarded sigma^2 = %.6g (Eckart-Young, 1e-10 of ||M||^2)", r, err2, tail);
    }
}

int main(void)
{
    test_layer_map();
    test_teacher_layers();
    test_lowrank();
    return done_testing();
}
