/* online_wire.c: the rank layout and message format of online.h, shared by
 * the student and teacher sides. */
#include "kd/stages/online.h"

#include <string.h>

int online_layout_plan(struct online_layout *l, int world, int teacher_ranks, int S,
                       struct kd_err *err)
{
    char e[400];
    if (layout_online(l, world, teacher_ranks, S, e, sizeof e)) {
        kd_errf(err, "online mode: %s", e);
        return -1;
    }
    return 0;
}

void online_dims_of(struct online_dims *d, const struct kd_needs *needs,
                    const struct bert_config *teacher, int64_t B, int64_t T)
{
    memset(d, 0, sizeof *d);
    d->needs = *needs;
    d->K = teacher->num_labels;
    d->Ct = teacher->hidden_size;
    for (int64_t l = 0; l < teacher->num_hidden_layers; l++)
        d->NH[l] = teacher->layer_heads[l];
    d->B = B, d->T = T;
}

size_t online_msg_floats(const struct online_dims *d, int64_t n, int64_t t)
{
    const struct kd_needs *nd = &d->needs;
    int64_t f = 4; /* header */
    if (nd->logits)
        f += n * d->K;
    f += nd->n_hidden * n * (nd->hidden_tokens == TOKEN_SEL_CLS ? 1 : t) * d->Ct;
    for (int i = 0; i < nd->n_attention; i++)
        f += n * d->NH[nd->attention_layers[i] - 1] * t * t;
    return (size_t)f;
}

/* The header's four int32 values travel in the first four floats' bits. */
static void header_put(float *buf, int64_t step, int64_t micro, int64_t n, int64_t t)
{
    const int32_t h[4] = {(int32_t)step, (int32_t)micro, (int32_t)n, (int32_t)t};
    memcpy(buf, h, sizeof h);
}

void online_msg_pack(const struct online_dims *d, float *buf, int64_t step, int64_t micro,
                     int64_t n, int64_t t, const float *logits, const float *const *hidden,
                     const float *const *probs)
{
    const struct kd_needs *nd = &d->needs;
    const int64_t C = d->Ct;
    header_put(buf, step, micro, n, t);
    float *p = buf + 4;
    if (nd->logits) {
        memcpy(p, logits, (size_t)(n * d->K) * sizeof *p);
        p += n * d->K;
    }
    for (int i = 0; i < nd->n_hidden; i++) {
        if (nd->hidden_tokens == TOKEN_SEL_CLS) {
            for (int64_t r = 0; r < n; r++)
                memcpy(p + r * C, hidden[i] + r * t * C, (size_t)C * sizeof *p);
            p += n * C;
        } else {
            memcpy(p, hidden[i], (size_t)(n * t * C) * sizeof *p);
            p += n * t * C;
        }
    }
    for (int i = 0; i < nd->n_attention; i++) {
        const int64_t f = n * d->NH[nd->attention_layers[i] - 1] * t * t;
        memcpy(p, probs[i], (size_t)f * sizeof *p);
        p += f;
    }
}

int online_msg_view(const struct online_dims *d, const float *buf, int64_t step, int64_t micro,
                    const struct batch_rows *b, struct kd_teacher_view *v, struct kd_err *err)
{
    const struct kd_needs *nd = &d->needs;
    int32_t h[4];
    memcpy(h, buf, sizeof h);
    if (h[0] != (int32_t)step || h[1] != (int32_t)micro || h[2] != (int32_t)b->n ||
        h[3] != (int32_t)b->t) {
        kd_errf(err, "online teacher output out of order: expected step %lld micro-batch %lld "
                     "of %lld rows x %lld tokens, got step %d micro-batch %d of %d x %d",
                (long long)step, (long long)micro, (long long)b->n, (long long)b->t, h[0],
                h[1], h[2], h[3]);
        return -1;
    }
    const int64_t n = b->n, t = b->t, C = d->Ct;
    memset(v, 0, sizeof *v);
    v->B = n, v->T = t;
    v->attention_mask = b->mask;
    v->labels = b->labels;
    v->labels_f32 = b->targets;
    v->hidden_tokens = nd->hidden_tokens;
    const float *p = buf + 4;
    if (nd->logits) {
        v->logits = p;
        p += n * d->K;
    }
    for (int i = 0; i < nd->n_hidden; i++) {
        v->hidden[nd->hidden_layers[i]] = p;
        p += n * (nd->hidden_tokens == TOKEN_SEL_CLS ? 1 : t) * C;
    }
    for (int i = 0; i < nd->n_attention; i++) {
        const int l = nd->attention_layers[i];
        v->probs[l - 1] = p;
        p += n * d->NH[l - 1] * t * t;
    }
    return 0;
}
