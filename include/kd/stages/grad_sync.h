/* grad_sync.h: data-parallel gradient reduction for a stage's model
 * (stages layer, over parallel/). Attach it to each backward (bucketed
 * reduction overlapped with the backward) and hand its hooks to the
 * trainer. */
#ifndef KD_STAGES_GRAD_SYNC_H
#define KD_STAGES_GRAD_SYNC_H

#include "kd/model/bert.h"
#include "kd/model/optim.h"
#include "kd/parallel/comm.h"

struct grad_sync {
    const struct comm *comm;
    struct bert_model *model;
    struct optim_grad_sync hooks;
};

void grad_sync_init(struct grad_sync *g, const struct comm *c, struct bert_model *m);
/* Sets the backward's grads_ready callback (no-op on one rank). */
void grad_sync_attach(struct grad_sync *g, struct bert_grad_in *gin);
/* NULL on one rank. */
const struct optim_grad_sync *grad_sync_hooks(struct grad_sync *g);
void grad_sync_free(struct grad_sync *g);

#endif
