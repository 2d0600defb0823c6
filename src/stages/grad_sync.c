/* grad_sync.c: the stages' use of the data-parallel reducer. */
#include "kd/stages/grad_sync.h"

int grad_sync_init(struct grad_sync *g, const struct comm *c, struct bert_model *m,
                   struct kd_err *err)
{
    g->comm = c;
    g->active = c->size > 1;
    if (!g->active)
        return 0;
    if (dp_reducer_init(&g->r, c->world, m, NULL, err))
        return -1;
    g->hooks = dp_reducer_sync(&g->r);
    return 0;
}

int grad_sync_add_block(struct grad_sync *g, float *grads, size_t count, const char *name,
                        struct kd_err *err)
{
    return g->active ? dp_reducer_add_block(&g->r, grads, count, name, err) : 0;
}

void grad_sync_attach(struct grad_sync *g, struct bert_grad_in *gin, int last_micro_step)
{
    if (g->active)
        dp_reducer_attach(&g->r, gin, last_micro_step);
}

const struct optim_grad_sync *grad_sync_hooks(struct grad_sync *g)
{
    return g->active ? &g->hooks : NULL;
}

void grad_sync_free(struct grad_sync *g)
{
    if (g->active)
        dp_reducer_free(&g->r);
    g->active = 0;
}
