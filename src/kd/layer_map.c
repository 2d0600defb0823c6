/* layer_map.c: resolving a loss term's layer map (kd layer). The maps and
 * their rules are specified in include/kd/kd/layer_map.h; every check here
 * is a user error (the job file), so each message names the loss, the
 * layers and the numbers. */
#include "kd/kd/layer_map.h"
#include "kd/kd/loss_term.h"

#include <stdio.h>
#include <string.h>

const char *kd_loss_where(char *buf, size_t n, int index, const struct loss_cfg *cfg)
{
    const struct kd_term_ops *ops = kd_term_ops_of(cfg->kind);
    const char *kind = ops ? ops->name : "?";
    if (cfg->line > 0)
        snprintf(buf, n, "losses.[%d] (%s, line %d)", index, kind, cfg->line);
    else
        snprintf(buf, n, "losses.[%d] (%s, from --set)", index, kind);
    return buf;
}

/* Insertion sort by student layer: at most 129 pairs, once per stage. */
static void sort_pairs(struct kd_layer_map *m)
{
    for (int i = 1; i < m->n; i++) {
        struct kd_layer_pair p = m->pair[i];
        int j = i;
        for (; j > 0 && m->pair[j - 1].student > p.student; j--)
            m->pair[j] = m->pair[j - 1];
        m->pair[j] = p;
    }
}

static int resolve_explicit(struct kd_layer_map *out, const struct loss_cfg *cfg,
                            const char *where, int64_t Ls, int64_t Lt, int lo,
                            struct kd_err *err)
{
    const struct int_list *sl = &cfg->student_layers, *tl = &cfg->teacher_layers;
    if (sl->n == 0)
        return kd_errf(err, "%s: map \"explicit\" needs student_layers and teacher_layers, "
                       "got no pairs", where);
    if (sl->n != tl->n)
        return kd_errf(err, "%s: expected as many teacher_layers as student_layers (%d), "
                       "got %d", where, sl->n, tl->n);
    if (sl->n > KD_MAX_PAIRS)
        return kd_errf(err, "%s: expected at most %d layer pairs, got %d", where,
                       KD_MAX_PAIRS, sl->n);
    const char *why = lo == 0 ? "" : " (layer 0, the embeddings, has no attention)";
    for (int i = 0; i < sl->n; i++) {
        if (sl->v[i] < lo || sl->v[i] > Ls)
            return kd_errf(err, "%s: student_layers[%d]: expected a student layer in "
                           "[%d, %lld]%s, got %lld", where, i, lo, (long long)Ls, why,
                           (long long)sl->v[i]);
        if (tl->v[i] < lo || tl->v[i] > Lt)
            return kd_errf(err, "%s: teacher_layers[%d]: expected a teacher layer in "
                           "[%d, %lld]%s, got %lld", where, i, lo, (long long)Lt, why,
                           (long long)tl->v[i]);
        for (int k = 0; k < i; k++)
            if (sl->v[k] == sl->v[i])
                return kd_errf(err, "%s: student layer %lld is mapped twice "
                               "(student_layers[%d] and [%d], to teacher layers %lld and "
                               "%lld); each student layer takes one teacher layer", where,
                               (long long)sl->v[i], k, i, (long long)tl->v[k],
                               (long long)tl->v[i]);
        out->pair[i].student = (int32_t)sl->v[i];
        out->pair[i].teacher = (int32_t)tl->v[i];
    }
    out->n = sl->n;
    return 0;
}

int kd_layer_map_resolve(struct kd_layer_map *out, const struct loss_cfg *cfg, int index,
                         int64_t student_layers, int64_t teacher_layers, int allow_embeddings,
                         struct kd_err *err)
{
    char where[96];
    kd_loss_where(where, sizeof where, index, cfg);
    memset(out, 0, sizeof *out);
    const int64_t Ls = student_layers, Lt = teacher_layers;
    if (Ls < 1 || Ls > BERT_MAX_LAYERS || Lt < 1 || Lt > BERT_MAX_LAYERS)
        return kd_errf(err, "%s: a layer map needs 1 to %d layers on each side, got %lld "
                       "student and %lld teacher layers", where, BERT_MAX_LAYERS,
                       (long long)Ls, (long long)Lt);
    if (cfg->map != LAYER_MAP_EXPLICIT &&
        (cfg->student_layers.n || cfg->teacher_layers.n))
        return kd_errf(err, "%s: student_layers/teacher_layers are given, so expected map "
                       "\"explicit\", got \"%s\"", where,
                       cfg->map == LAYER_MAP_UNIFORM ? "uniform" : "last");
    switch (cfg->map) {
    case LAYER_MAP_UNIFORM:
        if (Ls > Lt)
            return kd_errf(err, "%s: map \"uniform\" needs at most as many student layers "
                           "as teacher layers, got %lld student and %lld teacher layers\n"
                           "HINT: use map = \"explicit\" to say which teacher layer each "
                           "student layer takes", where, (long long)Ls, (long long)Lt);
        for (int64_t j = 1; j <= Ls; j++) {
            out->pair[j - 1].student = (int32_t)j;
            out->pair[j - 1].teacher = (int32_t)(j * Lt / Ls); /* floor, in [j, Lt] */
        }
        out->n = (int)Ls;
        return 0;
    case LAYER_MAP_LAST:
        out->pair[0].student = (int32_t)Ls;
        out->pair[0].teacher = (int32_t)Lt;
        out->n = 1;
        return 0;
    case LAYER_MAP_EXPLICIT:
        if (resolve_explicit(out, cfg, where, Ls, Lt, allow_embeddings ? 0 : 1, err))
            return -1;
        sort_pairs(out);
        return 0;
    default:
        return kd_errf(err, "%s: unknown layer map %d", where, cfg->map);
    }
}
