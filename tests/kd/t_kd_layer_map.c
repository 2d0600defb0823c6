/* t_kd_layer_map.c: layer maps, the union of teacher needs, and every
 * validation message of the loss terms (kd/layer_map.h, kd/loss_term.h,
 * kd/loss_set.h).
 *   maps: uniform 12 -> 6 = 2,4,..,12; 12 -> 5 = 2,4,7,9,12 (floor); 4 -> 4
 *     the identity; last; explicit, sorted by student layer, with the
 *     embeddings (0 <-> 0) for a hidden term;
 *   needs: the union over soft + hidden (cls) + attention + hidden (all,
 *     embeddings) is logits, teacher hidden {0,2,4,6} of every token,
 *     attention {1,6}; hard alone needs labels only; [CLS]-only hidden terms
 *     need [CLS] only; an error in any map is reported by kd_needs_of;
 *   errors, compared as whole strings: explicit with no pairs, unequal list
 *     lengths, student / teacher layers out of range (hidden allows 0,
 *     attention does not), a student layer mapped twice, lists with a
 *     non-explicit map, uniform with more student than teacher layers
 *     (HINT line), zero layers, "from --set" when the line is 0, head counts
 *     that differ, a pruned (0-head) student layer, label counts that differ
 *     for soft labels, the loss count, projection look-ups. */
#include "kd/kd/layer_map.h"
#include "kd/kd/loss_set.h"
#include "kd/kd/loss_term.h"
#include "../model/bert_testutil.h"
#include "../tap.h"

#include <stdio.h>
#include <string.h>

static int64_t sv_buf[8][16];

/* A loss entry; explicit lists from the arrays (n < 0: none). */
static struct loss_cfg mk(int kind, int line, int map, int n, const int64_t *s,
                          const int64_t *t)
{
    static int slot;
    struct loss_cfg c;
    memset(&c, 0, sizeof c);
    c.kind = kind;
    c.line = line;
    c.weight = 1.0;
    c.temperature = c.temperature_end = 1.0;
    c.map = map;
    if (n > 0) {
        int64_t *a = sv_buf[slot++ % 8], *b = sv_buf[slot++ % 8];
        memcpy(a, s, (size_t)n * sizeof *a);
        memcpy(b, t, (size_t)n * sizeof *b);
        c.student_layers = (struct int_list){n, a};
        c.teacher_layers = (struct int_list){n, b};
    }
    return c;
}

static void map_str(const struct kd_layer_map *m, char *buf, size_t n)
{
    size_t len = 0;
    buf[0] = '\0';
    for (int i = 0; i < m->n && len < n; i++)
        len += (size_t)snprintf(buf + len, n - len, "%s%d:%d", i ? "," : "",
                                (int)m->pair[i].student, (int)m->pair[i].teacher);
}

static void maps(void)
{
    struct kd_layer_map m;
    struct kd_err err;
    char buf[256];
    struct loss_cfg c = mk(LOSS_KIND_HIDDEN, 3, LAYER_MAP_UNIFORM, 0, NULL, NULL);
    ok(kd_layer_map_resolve(&m, &c, 0, 6, 12, 1, &err) == 0, "uniform 6 <- 12 resolves");
    map_str(&m, buf, sizeof buf);
    ok_str(buf, "1:2,2:4,3:6,4:8,5:10,6:12", "uniform 6 <- 12 (Aguilar's 2j)");
    kd_layer_map_resolve(&m, &c, 0, 5, 12, 1, &err);
    map_str(&m, buf, sizeof buf);
    ok_str(buf, "1:2,2:4,3:7,4:9,5:12", "uniform 5 <- 12: floor(j*12/5)");
    kd_layer_map_resolve(&m, &c, 0, 4, 4, 1, &err);
    map_str(&m, buf, sizeof buf);
    ok_str(buf, "1:1,2:2,3:3,4:4", "uniform 4 <- 4: identity, no embeddings");
    c.map = LAYER_MAP_LAST;
    kd_layer_map_resolve(&m, &c, 0, 6, 12, 1, &err);
    map_str(&m, buf, sizeof buf);
    ok_str(buf, "6:12", "last");
    const int64_t s[3] = {3, 0, 1}, t[3] = {9, 0, 3};
    c = mk(LOSS_KIND_HIDDEN, 3, LAYER_MAP_EXPLICIT, 3, s, t);
    ok(kd_layer_map_resolve(&m, &c, 0, 4, 12, 1, &err) == 0, "explicit with 0 <-> 0 (hidden)");
    map_str(&m, buf, sizeof buf);
    ok_str(buf, "0:0,1:3,3:9", "explicit, sorted by student layer");
}

static void needs(void)
{
    struct loss_cfg l[4];
    const int64_t s1[2] = {1, 3}, t1[2] = {6, 1}, s0[1] = {0}, t0[1] = {0};
    l[0] = mk(LOSS_KIND_SOFT, 2, LAYER_MAP_UNIFORM, 0, NULL, NULL);
    l[1] = mk(LOSS_KIND_HIDDEN, 3, LAYER_MAP_UNIFORM, 0, NULL, NULL);
    l[1].tokens = TOKEN_SEL_CLS;
    l[2] = mk(LOSS_KIND_ATTENTION, 4, LAYER_MAP_EXPLICIT, 2, s1, t1);
    l[3] = mk(LOSS_KIND_HIDDEN, 5, LAYER_MAP_EXPLICIT, 1, s0, t0);
    l[3].tokens = TOKEN_SEL_ALL;
    struct kd_needs n;
    struct kd_err err;
    ok(kd_needs_of(&n, l, 4, 3, 6, &err) == 0, "needs of soft + hidden + attention + hidden");
    char buf[128];
    size_t len = 0;
    for (int i = 0; i < n.n_hidden; i++)
        len += (size_t)snprintf(buf + len, sizeof buf - len, "%s%d", i ? "," : "",
                                (int)n.hidden_layers[i]);
    len += (size_t)snprintf(buf + len, sizeof buf - len, " | ");
    for (int i = 0; i < n.n_attention; i++)
        len += (size_t)snprintf(buf + len, sizeof buf - len, "%s%d", i ? "," : "",
                                (int)n.attention_layers[i]);
    ok_str(buf, "0,2,4,6 | 1,6", "teacher hidden {0,2,4,6}, attention {1,6}, ascending");
    ok(n.logits == 1 && n.labels == 0 && n.hidden_tokens == TOKEN_SEL_ALL,
       "logits, no labels, every token (one hidden term compares all tokens)");
    ok(kd_needs_of(&n, l + 1, 1, 3, 6, &err) == 0 && n.hidden_tokens == TOKEN_SEL_CLS &&
       n.n_hidden == 3 && n.n_attention == 0 && !n.logits,
       "a [CLS]-only hidden term needs [CLS] of 3 layers only");
    l[0].kind = LOSS_KIND_HARD;
    ok(kd_needs_of(&n, l, 1, 3, 6, &err) == 0 && n.labels && !n.logits && !n.n_hidden &&
       !n.n_attention, "hard alone: labels only");
    ok(kd_needs_of(&n, l + 1, 1, 7, 6, &err) == -1, "needs: a bad map is an error");
    ok_str(err.msg, "losses.[0] (hidden, line 3): map \"uniform\" needs at most as many "
           "student layers as teacher layers, got 7 student and 6 teacher layers\n"
           "HINT: use map = \"explicit\" to say which teacher layer each student layer takes",
           "needs: the map's message");
}

/* kd_layer_map_resolve's message for one entry. */
static void map_err(struct loss_cfg c, int index, int64_t Ls, int64_t Lt, int emb,
                    const char *want, const char *what)
{
    struct kd_layer_map m;
    struct kd_err err;
    int rc = kd_layer_map_resolve(&m, &c, index, Ls, Lt, emb, &err);
    ok(rc == -1, "%s: refused", what);
    ok_str(rc == -1 ? err.msg : "(accepted)", want, "%s: message", what);
}

static void map_errors(void)
{
    const int64_t a[3] = {1, 3, 2}, b[3] = {2, 6, 8}, big[2] = {1, 5}, zero[2] = {0, 2},
                  tt[2] = {2, 13}, dup[3] = {2, 1, 2}, dupt[3] = {4, 2, 6};
    struct loss_cfg c;
    c = mk(LOSS_KIND_HIDDEN, 14, LAYER_MAP_EXPLICIT, 0, NULL, NULL);
    map_err(c, 2, 4, 12, 1, "losses.[2] (hidden, line 14): map \"explicit\" needs "
            "student_layers and teacher_layers, got no pairs", "explicit without pairs");
    c = mk(LOSS_KIND_ATTENTION, 7, LAYER_MAP_EXPLICIT, 3, a, b);
    c.student_layers.n = 2;
    map_err(c, 0, 4, 12, 0, "losses.[0] (attention, line 7): expected as many teacher_layers "
            "as student_layers (2), got 3", "unequal list lengths");
    c = mk(LOSS_KIND_ATTENTION, 9, LAYER_MAP_EXPLICIT, 2, big, b);
    map_err(c, 1, 4, 12, 0, "losses.[1] (attention, line 9): student_layers[1]: expected a "
            "student layer in [1, 4] (layer 0, the embeddings, has no attention), got 5",
            "attention: student layer above L_s");
    c = mk(LOSS_KIND_ATTENTION, 9, LAYER_MAP_EXPLICIT, 2, zero, b);
    map_err(c, 1, 4, 12, 0, "losses.[1] (attention, line 9): student_layers[0]: expected a "
            "student layer in [1, 4] (layer 0, the embeddings, has no attention), got 0",
            "attention: student layer 0");
    c = mk(LOSS_KIND_ATTENTION, 9, LAYER_MAP_EXPLICIT, 2, a, zero);
    map_err(c, 1, 4, 12, 0, "losses.[1] (attention, line 9): teacher_layers[0]: expected a "
            "teacher layer in [1, 12] (layer 0, the embeddings, has no attention), got 0",
            "attention: teacher layer 0");
    c = mk(LOSS_KIND_HIDDEN, 3, LAYER_MAP_EXPLICIT, 2, big, b);
    map_err(c, 0, 4, 12, 1, "losses.[0] (hidden, line 3): student_layers[1]: expected a "
            "student layer in [0, 4], got 5", "hidden: student layer above L_s");
    c = mk(LOSS_KIND_HIDDEN, 3, LAYER_MAP_EXPLICIT, 2, a, tt);
    map_err(c, 0, 4, 12, 1, "losses.[0] (hidden, line 3): teacher_layers[1]: expected a "
            "teacher layer in [0, 12], got 13", "hidden: teacher layer above L_t");
    c = mk(LOSS_KIND_HIDDEN, 3, LAYER_MAP_EXPLICIT, 3, dup, dupt);
    map_err(c, 0, 4, 12, 1, "losses.[0] (hidden, line 3): student layer 2 is mapped twice "
            "(student_layers[0] and [2], to teacher layers 4 and 6); each student layer "
            "takes one teacher layer", "student layer twice");
    c = mk(LOSS_KIND_HIDDEN, 0, LAYER_MAP_UNIFORM, 2, a, b);
    map_err(c, 0, 4, 12, 1, "losses.[0] (hidden, from --set): student_layers/teacher_layers "
            "are given, so expected map \"explicit\", got \"uniform\"",
            "lists with map uniform (from --set)");
    c = mk(LOSS_KIND_ATTENTION, 5, LAYER_MAP_LAST, 2, a, b);
    map_err(c, 3, 4, 12, 0, "losses.[3] (attention, line 5): student_layers/teacher_layers "
            "are given, so expected map \"explicit\", got \"last\"", "lists with map last");
    c = mk(LOSS_KIND_ATTENTION, 5, LAYER_MAP_UNIFORM, 0, NULL, NULL);
    map_err(c, 0, 6, 4, 0, "losses.[0] (attention, line 5): map \"uniform\" needs at most as "
            "many student layers as teacher layers, got 6 student and 4 teacher layers\n"
            "HINT: use map = \"explicit\" to say which teacher layer each student layer "
            "takes", "uniform with L_s > L_t");
    c = mk(LOSS_KIND_HIDDEN, 5, LAYER_MAP_LAST, 0, NULL, NULL);
    map_err(c, 0, 0, 12, 1, "losses.[0] (hidden, line 5): a layer map needs 1 to 128 layers "
            "on each side, got 0 student and 12 teacher layers", "a student without layers");
}

/* kd_loss_set_init's message. */
static void set_err(const struct loss_cfg *l, int n, const struct bert_config *cfg,
                    const struct kd_teacher_dims *td, const char *want, const char *what)
{
    struct kd_loss_set s;
    struct kd_err err;
    int rc = kd_loss_set_init(&s, l, n, NULL, cfg, td, 2, 4, 1, &err);
    ok(rc == -1, "%s: refused", what);
    ok_str(rc == -1 ? err.msg : "(accepted)", want, "%s: message", what);
    if (rc == 0)
        kd_loss_set_free(&s);
}

static void set_errors(void)
{
    struct bert_config cfg;
    bt_tiny_config(&cfg, 2, 3, 4, 8, 20, 10, 3); /* 2 layers of 3 heads, C = 12, K = 3 */
    struct kd_teacher_dims td = {.layers = 4, .hidden = 12, .heads = 4, .num_labels = 3};
    struct loss_cfg l[2];
    l[0] = mk(LOSS_KIND_SOFT, 2, LAYER_MAP_UNIFORM, 0, NULL, NULL);
    l[1] = mk(LOSS_KIND_ATTENTION, 8, LAYER_MAP_UNIFORM, 0, NULL, NULL);
    set_err(l, 2, &cfg, &td, "losses.[1] (attention, line 8): student layer 1 has 3 attention "
            "heads but teacher layer 2 has 4; maps are compared head by head and no head "
            "mapping is defined, so the counts must be equal", "head counts differ");
    td.heads = 3;
    const int64_t s[1] = {2}, t[1] = {3};
    struct bert_config pruned = cfg;
    pruned.layer_heads[1] = 0;
    l[0] = mk(LOSS_KIND_ATTENTION, 4, LAYER_MAP_EXPLICIT, 1, s, t);
    set_err(l, 1, &pruned, &td, "losses.[0] (attention, line 4): student layer 2 has no "
            "attention heads (pruned), so it cannot take teacher layer 3's attention maps",
            "pruned student layer");
    td.num_labels = 2;
    l[0] = mk(LOSS_KIND_SOFT, 2, LAYER_MAP_UNIFORM, 0, NULL, NULL);
    set_err(l, 1, &cfg, &td, "losses.[0] (soft, line 2): soft labels need the same label "
            "count in student and teacher, got 3 student and 2 teacher labels",
            "label counts differ");
    set_err(l, 0, &cfg, &td, "distill losses: expected 1 to 32 loss terms, got 0", "no terms");
    td.num_labels = 3;
    l[0] = mk(LOSS_KIND_ATTENTION, 6, LAYER_MAP_UNIFORM, 0, NULL, NULL);
    set_err(l, 1, &cfg, &(struct kd_teacher_dims){.layers = 1, .hidden = 12, .heads = 3,
                                                 .num_labels = 3},
            "losses.[0] (attention, line 6): map \"uniform\" needs at most as many student "
            "layers as teacher layers, got 2 student and 1 teacher layers\nHINT: use map = "
            "\"explicit\" to say which teacher layer each student layer takes",
            "set init reports map errors");

    /* projection look-ups */
    struct kd_loss_set set;
    struct kd_err err;
    struct kd_projection p;
    td.hidden = 20;
    l[0] = mk(LOSS_KIND_SOFT, 2, LAYER_MAP_UNIFORM, 0, NULL, NULL);
    l[1] = mk(LOSS_KIND_HIDDEN, 3, LAYER_MAP_UNIFORM, 0, NULL, NULL);
    if (kd_loss_set_init(&set, l, 2, NULL, &cfg, &td, 2, 4, 1, &err))
        bail_out("%s", err.msg);
    ok(kd_loss_set_projection(&set, 0, 1, &p, &err) == -1, "soft term: no projection");
    ok_str(err.msg, "losses.[0] (soft, line 2): has no projection (only hidden losses between "
           "different widths have one; student 12, teacher 20)", "message");
    ok(kd_loss_set_projection(&set, 1, 5, &p, &err) == -1, "unmapped student layer");
    ok_str(err.msg, "losses.[1] (hidden, line 3): student layer 5 is not mapped", "message");
    ok(kd_loss_set_projection(&set, 2, 1, &p, &err) == -1, "term index out of range");
    ok_str(err.msg, "projection: expected a loss index in [0, 2), got 2", "message");
    ok(kd_loss_set_projection(&set, 1, 2, &p, &err) == 0 && p.in == 12 && p.out == 20 &&
       p.teacher_layer == 4, "hidden term: student layer 2 -> teacher layer 4, 12 -> 20");
    kd_loss_set_free(&set);
}

int main(void)
{
    maps();
    needs();
    map_errors();
    set_errors();
    return done_testing();
}
