/* grad_sync.c: gradient sums over the data-parallel ranks. */
#include "kd/stages/grad_sync.h"

static int reduce_grads(void *ctx, float *grads, size_t count, struct kd_err *err)
{
    struct grad_sync *g = ctx;
    (void)err;
    MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, grads, (int)count, MPI_FLOAT, MPI_SUM,
                            g->comm->world));
    return 0;
}

void grad_sync_init(struct grad_sync *g, const struct comm *c, struct bert_model *m)
{
    g->comm = c, g->model = m;
    g->hooks = (struct optim_grad_sync){reduce_grads, NULL, g};
}

void grad_sync_attach(struct grad_sync *g, struct bert_grad_in *gin)
{
    (void)g, (void)gin;
}

const struct optim_grad_sync *grad_sync_hooks(struct grad_sync *g)
{
    return g->comm->size > 1 ? &g->hooks : NULL;
}

void grad_sync_free(struct grad_sync *g) { (void)g; }
