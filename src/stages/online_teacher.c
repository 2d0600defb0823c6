/* online_teacher.c: the teacher side of online.h: each replica waits for
 * its lead student's grant of a step, runs the micro-batches its students
 * will train on at that step through its pipeline (GPipe), and the last
 * stage sends each micro-batch's outputs to its student as soon as they
 * are computed. */
#include "kd/stages/online.h"
#include "kd/cli/exit_codes.h"
#include "kd/core/log.h"
#include "kd/core/timers.h"
#include "kd/parallel/comm.h"
#include "kd/parallel/pipeline.h"
#include "kd/stages/pipe_comms.h"

#include <stdlib.h>
#include <string.h>

enum { TAG_TOKEN = 1, TAG_OUTPUT = 2 };

struct server {
    MPI_Comm comm;
    const struct online_dims *dims;
    int64_t step;
    int64_t cap;                  /* micro-batches per step: its students x accumulate */
    int *owner;                   /* (cap) world rank of the student of micro-batch k */
    int64_t *micro_of;            /* (cap) the micro-batch's index for its student */
    const struct batch_rows **rows; /* (cap) */
    /* last stage: two sets of send buffers, by step parity */
    size_t slot_floats;
    float *send;                  /* (2, cap, slot_floats) */
    MPI_Request *req;             /* (2, cap) */
};

static int send_micro(void *vctx, const struct bert_model *m, int micro,
                      const struct pipeline_tap_view *taps, struct kd_err *err)
{
    (void)err;
    struct server *sv = vctx;
    const struct batch_rows *b = sv->rows[micro];
    const size_t k = (size_t)(sv->step % 2) * (size_t)sv->cap + (size_t)micro;
    float *buf = sv->send + k * sv->slot_floats;
    timer_start(TIMER_COMPUTE);
    online_msg_pack(sv->dims, buf, sv->step, sv->micro_of[micro], b->n, b->t, bert_logits(m),
                    taps->hidden, taps->probs);
    timer_stop(TIMER_COMPUTE);
    MPI_CHECK(MPI_Isend(buf, (int)online_msg_floats(sv->dims, b->n, b->t), MPI_FLOAT,
                        sv->owner[micro], TAG_OUTPUT, sv->comm, &sv->req[k]));
    return 0;
}

int online_teacher_run(const struct stage_ctx *ctx, MPI_Comm comm, const struct comm *teachers,
                       const struct online_layout *l, const struct online_dims *dims,
                       const struct bert_config *tcfg, const char *teacher_dir,
                       const struct dataset *train)
{
    const struct job *job = ctx->job;
    const struct stage_cfg *st = ctx->stage;
    struct kd_err err = {0};
    struct pipe_comms pc;
    pipe_comms_init(&pc, teachers, l->S);
    int64_t hid[BERT_MAX_LAYERS + 1], prb[BERT_MAX_LAYERS];
    for (int i = 0; i < dims->needs.n_hidden; i++)
        hid[i] = dims->needs.hidden_layers[i];
    for (int i = 0; i < dims->needs.n_attention; i++)
        prb[i] = dims->needs.attention_layers[i] - 1;
    struct pipeline_opts po = {.model = {.B = dims->B, .T = dims->T,
                                         .heads = BERT_HEAD_CLASSIFIER,
                                         .seed = (uint64_t)job->job.seed},
                               .checkpoint_dir = teacher_dir,
                               .init_seed = (uint64_t)job->job.seed,
                               .taps = {hid, dims->needs.n_hidden, prb,
                                        dims->needs.n_attention}};
    struct pipeline pp;
    if (pipeline_init(&pp, tcfg, pc.stages, pc.replicas, &po, &err)) {
        /* the students are waiting for outputs: end the job */
        kd_die(KD_EXIT_RUNTIME, "stage \"%s\": online teacher: %s", st->name, err.msg);
    }
    const int last = pipeline_is_last(&pp);
    /* this replica's students: d = replica, replica + R, ... */
    int n_students = 0;
    for (int d = pc.replica; d < l->students; d += l->R)
        n_students++;
    struct server sv = {.comm = comm, .dims = dims};
    sv.cap = (int64_t)n_students * st->accumulate;
    sv.owner = malloc((size_t)sv.cap * sizeof *sv.owner);
    sv.micro_of = malloc((size_t)sv.cap * sizeof *sv.micro_of);
    sv.rows = malloc((size_t)sv.cap * sizeof *sv.rows);
    struct batch_rows *br = calloc((size_t)sv.cap, sizeof *br);
    struct bert_batch *micro = malloc((size_t)sv.cap * sizeof *micro);
    struct batch_plan plan;
    int ok = sv.owner && sv.micro_of && sv.rows && br && micro &&
             batch_plan_init(&plan, st, train, (uint64_t)job->job.seed, l->students) == 0;
    for (int64_t k = 0; ok && k < sv.cap; k++)
        ok = batch_rows_alloc(&br[k], dims->B, train->max_seq_len) == 0;
    if (ok && last) {
        sv.slot_floats = online_msg_floats(dims, dims->B, dims->T);
        sv.send = malloc(2 * (size_t)sv.cap * sv.slot_floats * sizeof *sv.send);
        sv.req = malloc(2 * (size_t)sv.cap * sizeof *sv.req);
        ok = sv.send && sv.req;
        for (int64_t k = 0; ok && k < 2 * sv.cap; k++)
            sv.req[k] = MPI_REQUEST_NULL;
    }
    if (!ok)
        kd_die(KD_EXIT_RUNTIME, "stage \"%s\": online teacher: out of memory for %lld "
               "micro-batches", st->name, (long long)sv.cap);
    const int lead = pc.replica; /* world rank of the lead student */
    int rc = 0;
    for (;;) {
        int64_t step;
        timer_start(TIMER_COMM_WAIT);
        MPI_CHECK(MPI_Recv(&step, 1, MPI_INT64_T, lead, TAG_TOKEN, comm, MPI_STATUS_IGNORE));
        timer_stop(TIMER_COMM_WAIT);
        if (step < 0)
            break;
        batch_plan_step(&plan, step);
        int64_t m = 0;
        for (int d = pc.replica; d < l->students; d += l->R) {
            const int64_t count = batch_plan_micro_count(&plan, step, d);
            for (int64_t j = 0; j < count; j++, m++) {
                const int64_t *rows;
                int64_t n;
                uint64_t first;
                batch_plan_micro(&plan, d, j, &rows, &n, &first);
                batch_rows_gather(&br[m], train, rows, n);
                micro[m] = batch_rows_view(&br[m], 0, first, (uint64_t)step);
                sv.owner[m] = d, sv.micro_of[m] = j, sv.rows[m] = &br[m];
            }
        }
        if (last) {
            /* the buffers of step - 2 are free once their sends are done */
            timer_start(TIMER_COMM_WAIT);
            MPI_CHECK(MPI_Waitall((int)sv.cap, sv.req + (step % 2) * sv.cap,
                                  MPI_STATUSES_IGNORE));
            timer_stop(TIMER_COMM_WAIT);
        }
        sv.step = step;
        if (m > 0 && pipeline_forward(&pp, micro, (int)m, send_micro, &sv, &err)) {
            rc = -1;
            break;
        }
    }
    if (last) {
        timer_start(TIMER_COMM_WAIT);
        MPI_CHECK(MPI_Waitall((int)(2 * sv.cap), sv.req, MPI_STATUSES_IGNORE));
        timer_stop(TIMER_COMM_WAIT);
    }
    if (rc)
        kd_die(KD_EXIT_RUNTIME, "stage \"%s\": online teacher: %s", st->name, err.msg);
    for (int64_t k = 0; k < sv.cap; k++)
        batch_rows_free(&br[k]);
    batch_plan_free(&plan);
    free(br), free(micro), free(sv.owner), free(sv.micro_of), free(sv.rows);
    free(sv.send), free(sv.req);
    pipeline_free(&pp);
    pipe_comms_free(&pc);
    return KD_EXIT_OK;
}
