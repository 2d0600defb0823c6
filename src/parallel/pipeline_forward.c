/* pipeline_forward.c: the GPipe forward schedule (parallel layer).
 *
 * Per stage s, micro-batch i (slot k = i % 2):
 *   post the receives of i+1           (h_begin from s-1; on the last stage
 *                                        also every other stage's taps)
 *   wait for h_begin of i              (TIMER_COMM_WAIT)
 *   forward the slice                  (TIMER_COMPUTE)
 *   s < S-1: wait for slot k's previous sends, copy h_end and the own taps
 *            into slot k, Isend them (to s+1, and the taps to S-1)
 *   s = S-1: wait for i's taps, call the output callback
 * so a stage receives i+1 and sends i-1 while it computes i. Receives are
 * posted ahead into the slot freed by i-1: bert_forward copies its input
 * into the slice's own h_begin first, so the slot is free once it ran. */
#include "pipeline_internal.h"

#include "kd/core/timers.h"
#include "kd/parallel/comm.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

/* MPI counts are int: a micro-batch's message must fit. */
static int count_of(size_t n)
{
    KD_ASSERT(n <= (size_t)INT_MAX, "pipeline message of %zu floats exceeds MPI's int count",
              n);
    return (int)n;
}

/* Receives of micro-batch mb into slot k: act (stage > 0), taps[t] from
 * every stage t < S-1 that owns a requested tap (last stage). */
static void post_recvs(struct pipeline *pp, const struct bert_batch *mb, int k, MPI_Request *act,
                       MPI_Request *taps)
{
    const int s = pp->stage, S = pp->n_stages;
    const size_t n = (size_t)(mb->B * mb->T * pp->model.cfg.hidden_size);
    if (s > 0)
        MPI_CHECK(MPI_Irecv(pp->act_recv[k], count_of(n), MPI_FLOAT, s - 1, PIPELINE_TAG_ACT,
                            pp->comm, act));
    if (s != S - 1)
        return;
    for (int t = 0; t < S - 1; t++) {
        size_t nt = pipeline_tap_floats(pp, t, mb->B, mb->T);
        taps[t] = MPI_REQUEST_NULL;
        if (nt > 0)
            MPI_CHECK(MPI_Irecv(pp->tap_recv[k][t], count_of(nt), MPI_FLOAT, t,
                                PIPELINE_TAG_TAPS, pp->comm, &taps[t]));
    }
}

/* Packs this stage's requested taps of the last forward into dst, in
 * request order (hidden states, then probabilities); returns the floats. */
static size_t pack_taps(const struct pipeline *pp, float *dst)
{
    const struct bert_model *m = &pp->model;
    const int64_t B = m->batch.B, T = m->batch.T, C = m->cfg.hidden_size;
    size_t n = 0;
    for (int i = 0; i < pp->taps.n_hidden; i++) {
        const int64_t l = pp->taps.hidden[i];
        if (pipeline_hidden_owner(pp, l) != pp->stage)
            continue;
        memcpy(dst + n, bert_hidden(m, l), (size_t)(B * T * C) * sizeof(float));
        n += (size_t)(B * T * C);
    }
    for (int i = 0; i < pp->taps.n_probs; i++) {
        const int64_t l = pp->taps.probs[i];
        if (pipeline_probs_owner(pp, l) != pp->stage)
            continue;
        const size_t np = (size_t)(B * m->cfg.layer_heads[l] * T * T);
        memcpy(dst + n, bert_probs(m, l), np * sizeof(float));
        n += np;
    }
    return n;
}

/* On the last stage: points the view at every requested tap of the last
 * forward, the own ones in the model, the others in slot k's buffers
 * (unpacked in the order pack_taps wrote them). */
static void tap_view(const struct pipeline *pp, int k, const float **hidden, const float **probs)
{
    const struct bert_model *m = &pp->model;
    const int64_t B = m->batch.B, T = m->batch.T, C = m->cfg.hidden_size;
    const int S = pp->n_stages;
    size_t *off = kd_calloc((size_t)S, sizeof *off);
    for (int i = 0; i < pp->taps.n_hidden; i++) {
        const int64_t l = pp->taps.hidden[i];
        const int t = pipeline_hidden_owner(pp, l);
        if (t == S - 1) {
            hidden[i] = bert_hidden(m, l);
        } else {
            hidden[i] = pp->tap_recv[k][t] + off[t];
            off[t] += (size_t)(B * T * C);
        }
    }
    for (int i = 0; i < pp->taps.n_probs; i++) {
        const int64_t l = pp->taps.probs[i];
        const int t = pipeline_probs_owner(pp, l);
        if (t == S - 1) {
            probs[i] = bert_probs(m, l);
        } else {
            probs[i] = pp->tap_recv[k][t] + off[t];
            off[t] += (size_t)(B * m->cfg.layer_heads[l] * T * T);
        }
    }
    free(off);
}

int pipeline_forward(struct pipeline *pp, const struct bert_batch *micro, int n_micro,
                     pipeline_output_fn out, void *ctx, struct kd_err *err)
{
    const int s = pp->stage, S = pp->n_stages, last = s == S - 1;
    struct bert_model *m = &pp->model;
    const int64_t C = m->cfg.hidden_size, le = m->layer_end;
    pipeline_check_micro(pp, micro, n_micro);

    MPI_Request act_req[PIPELINE_SLOTS], send_req[PIPELINE_SLOTS], tsend_req[PIPELINE_SLOTS];
    MPI_Request *tap_req = kd_malloc((size_t)PIPELINE_SLOTS * (size_t)S * sizeof *tap_req);
    for (int k = 0; k < PIPELINE_SLOTS; k++) {
        act_req[k] = send_req[k] = tsend_req[k] = MPI_REQUEST_NULL;
        for (int t = 0; t < S; t++)
            tap_req[k * S + t] = MPI_REQUEST_NULL;
    }
    const float **hv = kd_calloc((size_t)pp->taps.n_hidden + 1, sizeof *hv);
    const float **pv = kd_calloc((size_t)pp->taps.n_probs + 1, sizeof *pv);
    int failed = 0;

    bert_use_acts(m, 0);
    if (n_micro > 0)
        post_recvs(pp, &micro[0], 0, &act_req[0], &tap_req[0]);
    for (int i = 0; i < n_micro; i++) {
        const int k = i % PIPELINE_SLOTS, kn = (i + 1) % PIPELINE_SLOTS;
        if (i + 1 < n_micro)
            post_recvs(pp, &micro[i + 1], kn, &act_req[kn], &tap_req[kn * S]);
        struct bert_batch b = micro[i];
        if (s > 0) {
            pipeline_wait(&act_req[k]);
            b.embedding_output = pp->act_recv[k];
        }
        timer_start(TIMER_COMPUTE);
        bert_forward(m, &b);
        timer_stop(TIMER_COMPUTE);
        const size_t n = (size_t)(b.B * b.T * C);
        if (!last) {
            pipeline_wait(&send_req[k]);
            memcpy(pp->act_send[k], bert_hidden(m, le), n * sizeof(float));
            MPI_CHECK(MPI_Isend(pp->act_send[k], count_of(n), MPI_FLOAT, s + 1,
                                PIPELINE_TAG_ACT, pp->comm, &send_req[k]));
            if (pp->tap_floats[s] > 0) {
                pipeline_wait(&tsend_req[k]);
                size_t nt = pack_taps(pp, pp->tap_send[k]);
                MPI_CHECK(MPI_Isend(pp->tap_send[k], count_of(nt), MPI_FLOAT, S - 1,
                                    PIPELINE_TAG_TAPS, pp->comm, &tsend_req[k]));
            }
            continue;
        }
        pipeline_wait_all(&tap_req[k * S], S);
        if (failed || !out)
            continue; /* after a failure: drain, so no sender waits forever */
        tap_view(pp, k, hv, pv);
        struct pipeline_tap_view view = {hv, pv};
        if (out(ctx, m, i, &view, err) != 0)
            failed = 1;
    }
    pipeline_wait_all(send_req, PIPELINE_SLOTS);
    pipeline_wait_all(tsend_req, PIPELINE_SLOTS);
    free(tap_req);
    free(hv);
    free(pv);

    MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &failed, 1, MPI_INT, MPI_MAX, pp->comm));
    if (failed && !last)
        kd_errf(err, "pipeline forward: the output callback failed on the last stage "
                     "(see its message)");
    return failed ? -1 : 0;
}
