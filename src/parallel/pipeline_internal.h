/* pipeline_internal.h: what the pipeline's source files share (parallel
 * layer; not a public API): message tags, timed waits, tap ownership. */
#ifndef KD_PARALLEL_PIPELINE_INTERNAL_H
#define KD_PARALLEL_PIPELINE_INTERNAL_H

#include "kd/parallel/pipeline.h"

/* One tag per kind of message. Messages of a kind between two stages are
 * sent and received in micro-batch order, and MPI does not let messages
 * with the same (source, tag, communicator) overtake each other, so the
 * micro-batch index need not be in the tag (no MPI_TAG_UB limit on m). */
enum pipeline_tag {
    PIPELINE_TAG_ACT = 1,  /* h_end of stage s -> h_begin of stage s+1 */
    PIPELINE_TAG_GRAD = 2, /* d h_begin of stage s -> d h_end of stage s-1 */
    PIPELINE_TAG_TAPS = 3  /* stage s's requested taps -> last stage */
};

/* MPI_Wait / MPI_Waitall under TIMER_COMM_WAIT (NULL requests are done). */
void pipeline_wait(MPI_Request *req);
void pipeline_wait_all(MPI_Request *req, int n);

/* The stage that computes hidden state l (0: the embeddings, stage 0; else
 * the stage whose last layer is l - 1) and attention probabilities of
 * layer l. */
int pipeline_hidden_owner(const struct pipeline *pp, int64_t l);
int pipeline_probs_owner(const struct pipeline *pp, int64_t l);

/* Floats of stage s's packed taps for a micro-batch of B x T. */
size_t pipeline_tap_floats(const struct pipeline *pp, int s, int64_t B, int64_t T);

/* Agreement at the start of a schedule: every rank of the replica was given
 * the same number of micro-batches with the same dims (KD_FATAL otherwise:
 * the schedules would wait for messages that never come). */
void pipeline_check_micro(const struct pipeline *pp, const struct bert_batch *micro,
                          int n_micro);

#endif
