/* grad_sync.h: data-parallel gradient reduction for a stage's model
 * (stages layer, over parallel/dp.h): buckets of the gradient block are
 * summed with non-blocking all-reduces while the backward of the last
 * micro-step of an optimizer step continues, the word embeddings
 * row-sparse, and extra blocks (e.g. loss projections) at the end. One
 * rank: nothing to do. */
#ifndef KD_STAGES_GRAD_SYNC_H
#define KD_STAGES_GRAD_SYNC_H

#include "kd/model/bert.h"
#include "kd/model/optim.h"
#include "kd/parallel/comm.h"
#include "kd/parallel/dp.h"

struct grad_sync {
    const struct comm *comm;
    int active;                 /* more than one rank */
    struct dp_reducer r;
    struct optim_grad_sync hooks;
};

/* Collective. Returns 0 or -1 with err. */
int grad_sync_init(struct grad_sync *g, const struct comm *c, struct bert_model *m,
                   struct kd_err *err);
/* Registers an extra gradient block (collective). */
int grad_sync_add_block(struct grad_sync *g, float *grads, size_t count, const char *name,
                        struct kd_err *err);
/* Arms the backward of the last micro-step of a step (others accumulate). */
void grad_sync_attach(struct grad_sync *g, struct bert_grad_in *gin, int last_micro_step);
/* For the trainer: reduce_grads sums the model block and every extra block. */
const struct optim_grad_sync *grad_sync_hooks(struct grad_sync *g);
void grad_sync_free(struct grad_sync *g);

#endif
