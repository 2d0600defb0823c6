/* pipe_comms.h: the communicators of a teacher pipeline layout (stages
 * layer): rank r of W is replica r / S, stage r % S (parallel/layout.h);
 * `stages` joins the S ranks of its replica in stage order, `replicas` the
 * R ranks holding the same stage. Also gathers a pipeline's slices into one
 * whole model on world rank 0 (to save it as a Hugging Face directory). */
#ifndef KD_STAGES_PIPE_COMMS_H
#define KD_STAGES_PIPE_COMMS_H

#include "kd/model/bert.h"
#include "kd/parallel/comm.h"
#include "kd/parallel/pipeline.h"

struct pipe_comms {
    int S, R, stage, replica;
    MPI_Comm stages, replicas;
};

void pipe_comms_init(struct pipe_comms *pc, const struct comm *c, int S);
void pipe_comms_free(struct pipe_comms *pc);

/* Collective over c: replica 0's stages send their parameters to world
 * rank 0, which copies them by name into `whole` (a model of the full
 * config, allocated by the caller on rank 0 only). heads: the heads of
 * the pipeline's last stage. */
void pipe_gather_params(const struct pipe_comms *pc, const struct comm *c,
                        const struct pipeline *pp, unsigned heads, struct bert_model *whole);

#endif
