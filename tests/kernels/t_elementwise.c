/* t_elementwise.c: tanh and residual add.
 *   tanh forward vs double: rel 1e-6, abs floor 1e-3; backward from the
 *     output cache; FD: eps 1e-2, rel 1e-3, abs 1e-4;
 *   residual forward exact (one fp32 add) incl. in-place forms; FD of both
 *     inputs (linear): eps 5e-2, rel 1e-4, abs 1e-5. */
#include "kd/kernels/elementwise.h"
#include "../gradcheck.h"
#include "../tap.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { N = 53 };

struct tc {
    float x[N], y[N], dx[N], dy[N];
};

static void tanh_fwd(void *p)
{
    struct tc *c = p;
    tanh_forward(c->y, c->x, N);
}

static void tanh_bwd(void *p)
{
    struct tc *c = p;
    tanh_backward(c->dx, c->dy, c->y, N);
}

struct rc {
    float a[N], b[N], out[N], da[N], db[N], dout[N];
};

static void res_fwd(void *p)
{
    struct rc *c = p;
    residual_forward(c->out, c->a, c->b, N);
}

static void res_bwd(void *p)
{
    struct rc *c = p;
    residual_backward(c->da, c->db, c->dout, N);
}

int main(void)
{
    struct tc *t = calloc(1, sizeof *t);
    gc_rand(t->x, N, -3, 3, 1);
    double want[N];
    for (int i = 0; i < N; i++)
        want[i] = tanh((double)t->x[i]);
    tanh_fwd(t);
    gc_check_close("tanh forward", t->y, want, N, 1e-6, 1e-3);
    struct gc_output tout[] = {{"y", t->y, NULL, t->dy, N}};
    struct gc_param tprm[] = {{"x", t->x, t->dx, N}};
    struct gc_problem tp = {"tanh", t, tanh_fwd, tanh_bwd, tout, 1, tprm, 1};
    struct gc_opts to = {.eps = 1e-2, .rel_tol = 1e-3, .abs_tol = 1e-4,
                         .max_entries = 0, .check_accumulate = 1, .seed = 2};
    gradcheck(&tp, &to);

    struct rc *r = calloc(1, sizeof *r);
    gc_rand(r->a, N, -1, 1, 3);
    gc_rand(r->b, N, -1, 1, 4);
    res_fwd(r);
    int exact = 1;
    for (int i = 0; i < N; i++)
        exact &= r->out[i] == r->a[i] + r->b[i];
    ok(exact, "residual forward is a + b");
    float buf[N];
    memcpy(buf, r->a, sizeof buf);
    residual_forward(buf, buf, r->b, N);
    int same = memcmp(buf, r->out, sizeof buf) == 0;
    memcpy(buf, r->b, sizeof buf);
    residual_forward(buf, r->a, buf, N);
    same &= memcmp(buf, r->out, sizeof buf) == 0;
    ok(same, "in-place residual (out == a, out == b) is identical");
    struct gc_output rout[] = {{"out", r->out, NULL, r->dout, N}};
    struct gc_param rprm[] = {{"a", r->a, r->da, N}, {"b", r->b, r->db, N}};
    struct gc_problem rp = {"residual", r, res_fwd, res_bwd, rout, 1, rprm, 2};
    struct gc_opts ro = {.eps = 5e-2, .rel_tol = 1e-4, .abs_tol = 1e-5,
                         .max_entries = 0, .check_accumulate = 1, .seed = 5};
    gradcheck(&rp, &ro);
    free(t), free(r);
    return done_testing();
}
