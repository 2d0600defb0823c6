/* t_bert_checkpoint.c: loading and saving BERT models as Hugging Face
 * directories (bert_load_dir / bert_load_params / bert_save_dir), and the
 * random initialisation.
 *
 *  - round trips: every fixture (classification, regression, pruned heads
 *    and FFN widths with zero-sized tensors, MLM) loads, saves and loads
 *    again with bit-identical parameters; the saved file holds exactly the
 *    tensors (names, shapes, values) of the original; config.json keeps the
 *    pruned heads and FFN widths; vocab.txt is copied;
 *  - spellings: a file with canonical names (no "bert." prefix, BertModel
 *    style), TF-era LayerNorm gamma/beta names, and a sharded checkpoint
 *    (index + two shards) load to the same parameters;
 *  - errors, each naming what is wrong: a missing encoder tensor (name and
 *    expected shape), a transposed tensor (expected and found shape), a
 *    config whose sizes disagree with the tensors, a bad config.json key;
 *  - heads absent from the file (a sequence-classification checkpoint used
 *    as a masked LM, a BertModel checkpoint used for classification) are
 *    initialised like transformers does: weights N(0, 0.02), biases 0,
 *    LayerNorm weights 1;
 *  - bert_init_random: HF's rules (pad row 0, LayerNorm 1/0, biases 0,
 *    weight std 0.02 within 5%), deterministic per seed. */
#include "../tap.h"
#include "bert_testutil.h"
#include "kd/core/fsutil.h"
#include "kd/core/log.h"
#include "kd/model/bert.h"
#include "kd/model/hf_config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct bert_opts opts_for(unsigned heads)
{
    struct bert_opts o = {.B = 2, .T = 8, .P = 2, .heads = heads, .seed = 1};
    return o;
}

static char *join(const char *dir, const char *name)
{
    return fs_path_join(dir, name);
}

static int params_equal(const struct bert_model *a, const struct bert_model *b)
{
    return a->ptab.floats == b->ptab.floats &&
           memcmp(a->params_arena.base, b->params_arena.base,
                  a->ptab.floats * sizeof(float)) == 0;
}

static int cfg_equal(const struct bert_config *x, const struct bert_config *y)
{
    int same = x->vocab_size == y->vocab_size && x->hidden_size == y->hidden_size &&
               x->num_hidden_layers == y->num_hidden_layers &&
               x->num_attention_heads == y->num_attention_heads &&
               x->intermediate_size == y->intermediate_size &&
               x->max_position_embeddings == y->max_position_embeddings &&
               x->type_vocab_size == y->type_vocab_size && x->pad_token_id == y->pad_token_id &&
               x->layer_norm_eps == y->layer_norm_eps &&
               x->hidden_dropout_prob == y->hidden_dropout_prob &&
               x->attention_probs_dropout_prob == y->attention_probs_dropout_prob &&
               x->classifier_dropout == y->classifier_dropout &&
               x->num_labels == y->num_labels && x->problem == y->problem;
    for (int64_t l = 0; same && l < x->num_hidden_layers; l++)
        same = x->layer_heads[l] == y->layer_heads[l] &&
               x->layer_intermediate[l] == y->layer_intermediate[l] &&
               x->layer_head_mask[l] == y->layer_head_mask[l];
    return same;
}

/* Loads fixture `name` with the heads given, saves it, loads the copy. */
static void round_trip(const char *name, unsigned heads)
{
    char *src = bt_fixture(name), *tmp = bt_tmpdir();
    char *vocab = join(src, "vocab.txt");
    struct bert_model a, b;
    struct bert_opts o = opts_for(heads);
    struct kd_err err;
    struct hf_labels lab;
    if (!ok(bert_load_dir(&a, src, &o, &lab, &err) == 0, "%s: loads", name)) {
        diag("%s", err.msg);
        return;
    }
    int rc = bert_save_dir(&a, tmp, vocab, &lab, &err);
    if (!ok(rc == 0, "%s: saves", name))
        diag("%s", err.msg);
    rc = bert_load_dir(&b, tmp, &o, NULL, &err);
    if (!ok(rc == 0, "%s: the saved directory loads", name)) {
        diag("%s", err.msg);
    } else {
        ok(params_equal(&a, &b), "%s: load -> save -> load gives identical parameters", name);
        ok(cfg_equal(&a.cfg, &b.cfg),
           "%s: config (sizes, pruned heads, FFN widths, labels, dropout) survives", name);
        bert_free(&b);
    }

    /* the saved file holds the original's tensors, same names and values */
    st_reader_t *ro, *rs;
    char *po = join(src, "model.safetensors"), *ps = join(tmp, "model.safetensors");
    if (st_reader_open_file(&ro, po, &err) == 0 && st_reader_open_file(&rs, ps, &err) == 0) {
        int same = st_reader_count(ro) == st_reader_count(rs);
        for (size_t i = 0; same && i < st_reader_count(ro); i++) {
            const struct st_tensor_info *t = st_reader_at(ro, i);
            const struct st_tensor_info *u = st_reader_find(rs, t->name);
            same = u && u->ndim == t->ndim && u->numel == t->numel &&
                   memcmp(u->shape, t->shape, sizeof t->shape) == 0;
            if (!same) {
                diag("tensor %s differs in name or shape", t->name);
                break;
            }
            float *x = malloc((size_t)(t->numel + 1) * sizeof(float));
            float *y = malloc((size_t)(t->numel + 1) * sizeof(float));
            st_reader_read_f32(ro, t, x, -1, NULL, &err);
            st_reader_read_f32(rs, u, y, -1, NULL, &err);
            same = memcmp(x, y, (size_t)t->numel * sizeof(float)) == 0;
            free(x), free(y);
        }
        ok(same, "%s: saved model.safetensors = original (%zu tensors, names, shapes, values)",
           name, st_reader_count(ro));
        const char *fmt = st_reader_metadata(rs, "format");
        ok(fmt && strcmp(fmt, "pt") == 0, "%s: metadata format = pt", name);
        st_reader_close(ro), st_reader_close(rs);
    } else {
        ok(0, "%s: open both files: %s", name, err.msg);
        ok(0, "%s: metadata", name);
    }
    char *pv = join(tmp, "vocab.txt");
    ok(fs_file_exists(pv), "%s: vocab.txt copied", name);
    free(pv), free(po), free(ps);
    hf_labels_free(&lab);
    bert_free(&a);
    bt_rmtree(tmp);
    free(src), free(tmp), free(vocab);
}

/* How write_variant spells or alters the tensors. */
enum variant {
    VARIANT_CANONICAL,  /* no "bert." prefix (BertModel's own names) */
    VARIANT_GAMMA_BETA, /* canonical + LayerNorm.gamma / LayerNorm.beta */
    VARIANT_DROP,       /* leave out `target` */
    VARIANT_TRANSPOSE,  /* store `target` (2-D) with its dims swapped */
    VARIANT_F16,        /* every tensor stored as F16 */
    VARIANT_BF16        /* every tensor stored as BF16 */
};

/* Writes path (a safetensors file) from m's parameters, altered by v. */
static void write_variant(const struct bert_model *m, const char *path, enum variant v,
                          const char *target)
{
    const float *base = (const float *)(const void *)m->params_arena.base;
    st_writer_t *w = st_writer_new();
    struct kd_err err;
    char nm[BERT_NAME_MAX + 8];
    for (int i = 0; i < m->ptab.n; i++) {
        const struct bert_tensor *t = &m->ptab.t[i];
        int64_t shape[4] = {t->shape[0], t->shape[1]};
        snprintf(nm, sizeof nm, "%s", t->name);
        if (v == VARIANT_GAMMA_BETA) {
            char *ln = strstr(nm, "LayerNorm.");
            if (ln)
                strcpy(ln + 10, strcmp(ln + 10, "weight") == 0 ? "gamma" : "beta");
        }
        if (target && strcmp(t->name, target) == 0) {
            if (v == VARIANT_DROP)
                continue;
            if (v == VARIANT_TRANSPOSE)
                shape[0] = t->shape[1], shape[1] = t->shape[0];
        }
        enum st_dtype dt = v == VARIANT_F16    ? ST_DTYPE_F16
                           : v == VARIANT_BF16 ? ST_DTYPE_BF16
                                               : ST_DTYPE_F32;
        if (st_writer_add_f32(w, nm, base + t->offset, t->ndim, shape, dt, &err))
            bail_out("%s", err.msg);
    }
    if (st_writer_write(w, path, &err) != 0)
        bail_out("%s", err.msg);
    st_writer_free(w);
}

/* A directory with m's config.json and vocab, weights written by variant. */
static char *variant_dir(const struct bert_model *m, enum variant v, const char *target)
{
    char *dir = bt_tmpdir();
    struct kd_err err;
    if (bert_save_dir(m, dir, NULL, NULL, &err) != 0)
        bail_out("%s", err.msg);
    char *p = join(dir, "model.safetensors");
    write_variant(m, p, v, target);
    free(p);
    return dir;
}

/* One TAP point: rc == -1 and the message holds every string given. */
static void ok_msg(int rc, const struct kd_err *err, const char *what, const char *s1,
                   const char *s2, const char *s3)
{
    int good = rc != 0;
    const char *need[3] = {s1, s2, s3};
    for (int i = 0; i < 3; i++)
        if (need[i] && !strstr(err->msg, need[i]))
            good = 0;
    if (!ok(good, "%s is an error naming it", what))
        diag("rc %d, message: %s", rc, rc ? err->msg : "(none)");
    else if (getenv("KD_SHOW_ERRORS"))
        diag("%s", err->msg);
}

static void spellings_and_errors(void)
{
    char *src = bt_fixture("cls_single");
    struct bert_opts o = opts_for(BERT_HEAD_CLASSIFIER);
    struct bert_model a, b;
    struct kd_err err;
    if (bert_load_dir(&a, src, &o, NULL, &err) != 0)
        bail_out("%s", err.msg);

    /* spellings */
    static const struct {
        enum variant v;
        const char *what;
    } spell[] = {{VARIANT_CANONICAL, "names without \"bert.\" (BertModel style)"},
                 {VARIANT_GAMMA_BETA, "LayerNorm gamma/beta names"}};
    for (int i = 0; i < 2; i++) {
        char *dir = variant_dir(&a, spell[i].v, NULL);
        int rc = bert_load_dir(&b, dir, &o, NULL, &err);
        if (!ok(rc == 0, "%s load", spell[i].what))
            diag("%s", err.msg);
        else {
            ok(params_equal(&a, &b), "%s give the same parameters", spell[i].what);
            bert_free(&b);
        }
        bt_rmtree(dir), free(dir);
    }

    /* sharded: even tensors in shard 1, odd ones in shard 2, plus the index */
    {
        char *dir = variant_dir(&a, VARIANT_CANONICAL, NULL);
        char *single = join(dir, "model.safetensors");
        remove(single);
        const float *base = (const float *)(const void *)a.params_arena.base;
        st_writer_t *w[2] = {st_writer_new(), st_writer_new()};
        size_t cap = 64 + (size_t)a.ptab.n * 200, len = 0;
        char *idx = malloc(cap), fname[BERT_NAME_MAX + 8];
        len += (size_t)snprintf(idx + len, cap - len, "{\"metadata\": {}, \"weight_map\": {");
        for (int i = 0; i < a.ptab.n; i++) {
            const struct bert_tensor *t = &a.ptab.t[i];
            st_bert_name_for_file(t->name, fname, sizeof fname);
            st_writer_add_f32(w[i % 2], fname, base + t->offset, t->ndim, t->shape,
                              ST_DTYPE_F32, &err);
            len += (size_t)snprintf(idx + len, cap - len, "%s\"%s\": \"model-0000%d-of-00002"
                                    ".safetensors\"", i ? ", " : "", fname, i % 2 + 1);
        }
        snprintf(idx + len, cap - len, "}}");
        for (int s = 0; s < 2; s++) {
            char nm[64];
            snprintf(nm, sizeof nm, "model-0000%d-of-00002.safetensors", s + 1);
            char *p = join(dir, nm);
            if (st_writer_write(w[s], p, &err) != 0)
                bail_out("%s", err.msg);
            st_writer_free(w[s]);
            free(p);
        }
        char *pi = join(dir, "model.safetensors.index.json");
        if (fs_file_write_atomic(pi, idx, strlen(idx), &err) != 0)
            bail_out("%s", err.msg);
        int rc = bert_load_dir(&b, dir, &o, NULL, &err);
        if (!ok(rc == 0, "sharded checkpoint (index + 2 shards) loads"))
            diag("%s", err.msg);
        else {
            ok(params_equal(&a, &b), "sharded checkpoint gives the same parameters");
            bert_free(&b);
        }
        free(pi), free(idx), free(single);
        bt_rmtree(dir), free(dir);
    }

    /* a missing encoder tensor */
    {
        const char *t = "encoder.layer.1.attention.output.dense.weight";
        char *dir = variant_dir(&a, VARIANT_DROP, t);
        int rc = bert_load_dir(&b, dir, &o, NULL, &err);
        ok_msg(rc, &err, "a missing tensor", t, "[32, 32]", "no such tensor");
        if (rc == 0)
            bert_free(&b);
        bt_rmtree(dir), free(dir);
    }
    /* a tensor of the wrong shape */
    {
        const char *t = "encoder.layer.0.intermediate.dense.weight";
        char *dir = variant_dir(&a, VARIANT_TRANSPOSE, t);
        int rc = bert_load_dir(&b, dir, &o, NULL, &err);
        ok_msg(rc, &err, "a transposed tensor", t, "expected shape [64, 32]", "got [32, 64]");
        if (rc == 0)
            bert_free(&b);
        bt_rmtree(dir), free(dir);
    }
    /* config.json sizes that disagree with the tensors */
    {
        char *dir = variant_dir(&a, VARIANT_CANONICAL, NULL);
        struct bert_config c = a.cfg;
        c.intermediate_size = 48;
        hf_config_init_layers(&c);
        char *p = join(dir, "config.json");
        if (hf_config_write(p, &c, NULL, NULL, &err) != 0)
            bail_out("%s", err.msg);
        int rc = bert_load_dir(&b, dir, &o, NULL, &err);
        ok_msg(rc, &err, "intermediate_size 48 against 64-wide tensors",
               "encoder.layer.0.intermediate.dense.weight", "expected shape [48, 32]",
               "got [64, 32]");
        if (rc == 0)
            bert_free(&b);
        /* a bad config value */
        static const char bad[] = "{\"model_type\": \"bert\", \"vocab_size\": 76, "
                                  "\"hidden_size\": 30, \"num_hidden_layers\": 2, "
                                  "\"num_attention_heads\": 4, \"intermediate_size\": 64}";
        if (fs_file_write_atomic(p, bad, sizeof bad - 1, &err) != 0)
            bail_out("%s", err.msg);
        rc = bert_load_dir(&b, dir, &o, NULL, &err);
        ok_msg(rc, &err, "hidden_size 30 with 4 heads", "config.json", "hidden_size", "30");
        if (rc == 0)
            bert_free(&b);
        free(p);
        bt_rmtree(dir), free(dir);
    }
    /* no model file at all */
    {
        char *dir = bt_tmpdir();
        if (bert_save_dir(&a, dir, NULL, NULL, &err) != 0)
            bail_out("%s", err.msg);
        char *p = join(dir, "model.safetensors");
        remove(p);
        int rc = bert_load_dir(&b, dir, &o, NULL, &err);
        ok_msg(rc, &err, "a directory without weights", dir, "model.safetensors", NULL);
        if (rc == 0)
            bert_free(&b);
        free(p);
        bt_rmtree(dir), free(dir);
    }
    bert_free(&a);
    free(src);
}

/* mean and standard deviation of x (n) */
static void stats(const float *x, int64_t n, double *mean, double *sd)
{
    double s = 0, s2 = 0;
    for (int64_t i = 0; i < n; i++)
        s += x[i], s2 += (double)x[i] * x[i];
    *mean = s / (double)n;
    *sd = sqrt(fmax(s2 / (double)n - *mean * *mean, 0.0));
}

static int all_equal(const float *x, int64_t n, float v)
{
    for (int64_t i = 0; i < n; i++)
        if (x[i] != v)
            return 0;
    return 1;
}

static void missing_heads(void)
{
    struct kd_err err;
    struct bert_model m;
    /* a classification checkpoint used as a masked LM: no cls.predictions */
    char *src = bt_fixture("cls_single");
    struct bert_opts o = opts_for(BERT_HEAD_MLM);
    int rc = bert_load_dir(&m, src, &o, NULL, &err);
    if (!ok(rc == 0, "a classification checkpoint loads as a masked LM (head initialised)")) {
        diag("%s", err.msg);
    } else {
        const int64_t C = m.cfg.hidden_size;
        double mean, sd;
        stats(m.p.mlm_w, C * C, &mean, &sd);
        ok(fabs(sd - 0.02) < 0.1 * 0.02 && fabs(mean) < 0.01,
           "missing transform.dense.weight ~ N(0, 0.02): mean %.4f sd %.4f", mean, sd);
        ok(all_equal(m.p.mlm_b, C, 0.0f) && all_equal(m.p.mlm_ln_w, C, 1.0f) &&
               all_equal(m.p.mlm_ln_b, C, 0.0f) && all_equal(m.p.mlm_bias, m.cfg.vocab_size, 0),
           "missing head biases 0, LayerNorm weight 1");
        bert_free(&m);
    }
    free(src);

    /* a BertModel checkpoint (encoder + pooler, no classifier) for classification */
    src = bt_fixture("cls_single");
    struct bert_model a;
    o = opts_for(BERT_HEAD_POOLER);
    if (bert_load_dir(&a, src, &o, NULL, &err) != 0)
        bail_out("%s", err.msg);
    char *dir = variant_dir(&a, VARIANT_CANONICAL, NULL);
    o = opts_for(BERT_HEAD_CLASSIFIER);
    rc = bert_load_dir(&m, dir, &o, NULL, &err);
    if (!ok(rc == 0, "a BertModel checkpoint loads for classification (classifier initialised)"))
        diag("%s", err.msg);
    else {
        ok(memcmp(m.p.pool_w, a.p.pool_w, (size_t)(32 * 32) * sizeof(float)) == 0,
           "the pooler comes from the file");
        double mean, sd;
        stats(m.p.cls_w, m.cfg.num_labels * 32, &mean, &sd);
        ok(sd > 0.01 && sd < 0.03 && all_equal(m.p.cls_b, m.cfg.num_labels, 0.0f),
           "classifier weight random (sd %.4f), bias 0", sd);
        bert_free(&m);
    }
    bert_free(&a);
    bt_rmtree(dir), free(dir), free(src);
}

static void random_init(void)
{
    struct bert_config cfg;
    bt_tiny_config(&cfg, 2, 4, 16, 128, 500, 64, 3);
    struct bert_opts o = opts_for(BERT_HEAD_CLASSIFIER | BERT_HEAD_MLM);
    struct bert_model a, b;
    struct kd_err err;
    if (bert_init(&a, &cfg, &o, &err) != 0 || bert_init(&b, &cfg, &o, &err) != 0)
        bail_out("%s", err.msg);
    bert_init_random(&a, 42, 0.02f);
    bert_init_random(&b, 42, 0.02f);
    ok(params_equal(&a, &b), "random init is a function of the seed");
    bert_init_random(&b, 43, 0.02f);
    ok(!params_equal(&a, &b), "another seed gives other values");
    const int64_t C = cfg.hidden_size;
    double mean, sd;
    stats(a.p.word_emb + C, (cfg.vocab_size - 1) * C, &mean, &sd);
    ok(fabs(sd - 0.02) < 0.05 * 0.02 && fabs(mean) < 1e-3,
       "word embeddings ~ N(0, 0.02): mean %.5f sd %.5f", mean, sd);
    ok(all_equal(a.p.word_emb, C, 0.0f), "the pad_token_id row is 0");
    stats(a.p.layer[1].ffn_in_w, 128 * C, &mean, &sd);
    ok(fabs(sd - 0.02) < 0.05 * 0.02, "intermediate.dense.weight sd %.5f", sd);
    ok(all_equal(a.p.layer[0].attn_ln_w, C, 1.0f) && all_equal(a.p.layer[0].attn_ln_b, C, 0.0f) &&
           all_equal(a.p.layer[0].qkv_b, 3 * C, 0.0f) && all_equal(a.p.emb_ln_w, C, 1.0f),
       "LayerNorm weight 1, biases 0");
    /* the segment table: decay flags and non-overlapping aligned offsets */
    int decay_ok = 1, layout_ok = 1;
    size_t end = 0;
    for (int i = 0; i < a.ptab.n; i++) {
        const struct bert_tensor *t = &a.ptab.t[i];
        int want = !strstr(t->name, "LayerNorm") &&
                   strcmp(t->name + strlen(t->name) - 5, ".bias") != 0;
        decay_ok &= t->decay == want;
        layout_ok &= t->offset >= end;
        end = t->offset + (size_t)t->numel;
    }
    ok(decay_ok, "weight decay on weights and embeddings, not on biases and LayerNorm");

    /* F16 and BF16 checkpoints (read in chunks: the word embeddings have
     * 32000 values) load as the rounded values */
    for (int k = 0; k < 2; k++) {
        enum variant v = k ? VARIANT_BF16 : VARIANT_F16;
        char *dir = variant_dir(&a, v, NULL);
        int rc = bert_load_params(&b, dir, 1, &err);
        int same = rc == 0;
        const float *x = (const float *)(const void *)a.params_arena.base;
        const float *y = (const float *)(const void *)b.params_arena.base;
        for (size_t i = 0; same && i < a.ptab.floats; i++) {
            float r = k ? st_bf16_to_f32(st_f32_to_bf16(x[i])) : st_f16_to_f32(st_f32_to_f16(x[i]));
            same = y[i] == r;
        }
        if (!ok(same, "%s checkpoint loads as the rounded values", k ? "BF16" : "F16") && rc)
            diag("%s", err.msg);
        bt_rmtree(dir), free(dir);
    }
    ok(layout_ok && end <= a.ptab.floats, "segments are ordered and disjoint (%zu floats)",
       a.ptab.floats);
    bert_free(&a), bert_free(&b);
}

int main(void)
{
    log_set_level(LOG_LEVEL_ERROR);
    round_trip("cls_single", BERT_HEAD_CLASSIFIER);
    round_trip("cls_pair", BERT_HEAD_CLASSIFIER);
    round_trip("regression", BERT_HEAD_CLASSIFIER);
    round_trip("pruned", BERT_HEAD_CLASSIFIER);
    round_trip("mlm", BERT_HEAD_MLM);
    spellings_and_errors();
    missing_heads();
    random_init();
    return done_testing();
}
