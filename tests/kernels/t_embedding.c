/* t_embedding.c: word + position + token-type embeddings.
 *   forward vs a double reference: max rel err 1e-6, abs floor 0.1 (one
 *     rounding of a three-term sum);
 *   NULL type_ids means type 0, NULL wtt means no type embedding;
 *   FD gradients of all three tables with repeated ids (scatter-add of
 *     duplicates): the op is linear, eps 5e-2, rel 1e-3, abs 1e-4;
 *   frozen tables (NULL gradients) are skipped. */
#include "kd/kernels/embedding.h"
#include "../gradcheck.h"
#include "../tap.h"

#include <stdlib.h>
#include <string.h>

enum { B = 2, T = 5, C = 19, V = 7, TV = 2, P = 8 };

/* token 3 repeats within and across sequences */
static const int32_t ids[B * T] = {1, 3, 3, 0, 6, 3, 2, 5, 3, 1};
static const int32_t types[B * T] = {0, 0, 1, 1, 1, 0, 0, 0, 1, 1};

struct ctx {
    float wte[V * C], wpe[P * C], wtt[TV * C], out[B * T * C];
    float dwte[V * C], dwpe[P * C], dwtt[TV * C], dout[B * T * C];
};

static void fwd(void *p)
{
    struct ctx *c = p;
    embedding_forward(c->out, ids, types, c->wte, c->wpe, c->wtt, B, T, C, V, TV);
}

static void bwd(void *p)
{
    struct ctx *c = p;
    embedding_backward(c->dwte, c->dwpe, c->dwtt, c->dout, ids, types, B, T, C, V, TV);
}

int main(void)
{
    struct ctx *c = calloc(1, sizeof *c);
    gc_rand(c->wte, V * C, -1, 1, 1);
    gc_rand(c->wpe, P * C, -1, 1, 2);
    gc_rand(c->wtt, TV * C, -1, 1, 3);

    double want[B * T * C];
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++)
            for (int i = 0; i < C; i++)
                want[(b * T + t) * C + i] = (double)c->wte[ids[b * T + t] * C + i] +
                                            c->wpe[t * C + i] +
                                            c->wtt[types[b * T + t] * C + i];
    fwd(c);
    gc_check_close("embedding forward", c->out, want, B * T * C, 1e-6, 0.1);

    /* NULL type_ids: every token has type 0 */
    float o2[B * T * C];
    embedding_forward(o2, ids, NULL, c->wte, c->wpe, c->wtt, B, T, C, V, TV);
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++)
            for (int i = 0; i < C; i++)
                want[(b * T + t) * C + i] = (double)c->wte[ids[b * T + t] * C + i] +
                                            c->wpe[t * C + i] + c->wtt[i];
    gc_check_close("embedding forward, NULL type_ids = type 0", o2, want, B * T * C, 1e-6, 0.1);
    embedding_forward(o2, ids, types, c->wte, c->wpe, NULL, B, T, C, V, TV);
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++)
            for (int i = 0; i < C; i++)
                want[(b * T + t) * C + i] =
                    (double)c->wte[ids[b * T + t] * C + i] + c->wpe[t * C + i];
    gc_check_close("embedding forward, no type table", o2, want, B * T * C, 1e-6, 0.1);

    struct gc_output outs[] = {{"out", c->out, NULL, c->dout, B * T * C}};
    struct gc_param prm[] = {{"wte", c->wte, c->dwte, V * C},
                             {"wpe", c->wpe, c->dwpe, P * C},
                             {"wtt", c->wtt, c->dwtt, TV * C}};
    struct gc_problem p = {"embedding", c, fwd, bwd, outs, 1, prm, 3};
    struct gc_opts o = {.eps = 5e-2, .rel_tol = 1e-3, .abs_tol = 1e-4,
                        .max_entries = 0, .check_accumulate = 1, .seed = 3};
    gradcheck(&p, &o);

    /* rows of unused tokens and positions >= T receive nothing */
    int untouched = 1;
    for (int i = 0; i < C; i++)
        untouched &= c->dwte[4 * C + i] == 0.0f && c->dwpe[(P - 1) * C + i] == 0.0f;
    ok(untouched, "unused vocabulary rows and positions get no gradient");

    /* frozen tables: NULL gradients are skipped, the rest unchanged */
    float dwpe2[P * C] = {0};
    memset(c->dwpe, 0, sizeof c->dwpe);
    bwd(c);
    embedding_backward(NULL, dwpe2, NULL, c->dout, ids, types, B, T, C, V, TV);
    ok(memcmp(dwpe2, c->dwpe, sizeof dwpe2) == 0, "frozen word and type tables are skipped");
    free(c);
    return done_testing();
}
