/* bert_testutil.c: see bert_testutil.h. */
#include "bert_testutil.h"
#include "../tap.h"
#include "kd/model/hf_config.h"

#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef KD_TOP_SRCDIR
#define KD_TOP_SRCDIR "."
#endif

char *bt_fixture(const char *rel)
{
    const char *top = getenv("KD_SRCDIR");
    if (!top || !*top)
        top = KD_TOP_SRCDIR;
    size_t n = strlen(top) + strlen(rel) + 32;
    char *p = kd_malloc(n);
    snprintf(p, n, "%s/tests/fixtures/models/%s", top, rel);
    return p;
}

int bt_has(const st_reader_t *r, const char *name)
{
    return st_reader_find(r, name) != NULL;
}

float *bt_read_f32(const st_reader_t *r, const char *name, int64_t *n)
{
    const struct st_tensor_info *t = st_reader_find(r, name);
    if (!t)
        bail_out("golden tensor '%s' missing", name);
    float *x = kd_malloc((size_t)(t->numel ? t->numel : 1) * sizeof(float));
    struct kd_err err;
    if (st_reader_read_f32(r, t, x, -1, NULL, &err) != 0)
        bail_out("%s", err.msg);
    if (n)
        *n = t->numel;
    return x;
}

int32_t *bt_read_i32(const st_reader_t *r, const char *name, int64_t *n)
{
    const struct st_tensor_info *t = st_reader_find(r, name);
    if (!t)
        bail_out("golden tensor '%s' missing", name);
    int64_t *w = kd_malloc((size_t)(t->numel ? t->numel : 1) * sizeof(int64_t));
    struct kd_err err;
    if (st_reader_read_i64(r, t, w, -1, NULL, &err) != 0)
        bail_out("%s", err.msg);
    int32_t *x = kd_malloc((size_t)(t->numel ? t->numel : 1) * sizeof(int32_t));
    for (int64_t i = 0; i < t->numel; i++)
        x[i] = (int32_t)w[i];
    free(w);
    if (n)
        *n = t->numel;
    return x;
}

double bt_compare(const char *what, const float *got, const float *want, int64_t n, double tol)
{
    double amax = 0.0;
    for (int64_t i = 0; i < n; i++)
        amax = fmax(amax, fabs((double)want[i]));
    const double floor = 1e-2 * amax;
    double worst = 0.0;
    int64_t at = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - (double)want[i]);
        double s = fmax(fabs((double)want[i]), floor);
        double e = s > 0.0 ? d / s : (d > 0.0 ? INFINITY : 0.0);
        if (!(e <= worst)) {
            worst = isnan(e) ? INFINITY : e;
            at = i;
        }
    }
    if (!ok(worst <= tol, "%s: max rel err %.3g <= %.0e (floor 1e-2 * max|want| = %.3g, %lld "
                          "values)", what, worst, tol, floor, (long long)n))
        diag("worst at %lld: got %.9g want %.9g", (long long)at, (double)got[at],
             (double)want[at]);
    return worst;
}

void bt_tiny_config(struct bert_config *cfg, int64_t L, int64_t NH, int64_t HS, int64_t F,
                    int64_t V, int64_t MP, int64_t K)
{
    hf_config_defaults(cfg);
    cfg->vocab_size = V;
    cfg->hidden_size = NH * HS;
    cfg->num_hidden_layers = L;
    cfg->num_attention_heads = NH;
    cfg->intermediate_size = F;
    cfg->max_position_embeddings = MP;
    cfg->num_labels = K;
    cfg->problem = K == 1 ? BERT_PROBLEM_REGRESSION : BERT_PROBLEM_CLASSIFICATION;
    hf_config_init_layers(cfg);
}

char *bt_tmpdir(void)
{
    const char *base = getenv("TMPDIR");
    if (!base || !*base)
        base = "/tmp";
    size_t n = strlen(base) + 32;
    char *p = kd_malloc(n);
    snprintf(p, n, "%s/kd_bert_XXXXXX", base);
    if (!mkdtemp(p))
        bail_out("cannot create a temporary directory under %s", base);
    return p;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

void bt_rmtree(const char *dir)
{
    if (dir)
        nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}
