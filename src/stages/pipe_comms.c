/* pipe_comms.c: pipeline communicators and gathering the slices. */
#include "kd/stages/pipe_comms.h"
#include "kd/parallel/layout.h"

#include <stdlib.h>
#include <string.h>

void pipe_comms_init(struct pipe_comms *pc, const struct comm *c, int S)
{
    struct rank_layout l;
    char e[256];
    KD_ASSERT(layout_plan(&l, c->size, S, e, sizeof e) == 0, "%s", e);
    pc->S = S, pc->R = l.replicas;
    layout_teacher_role(&l, c->rank, &pc->replica, &pc->stage);
    MPI_CHECK(MPI_Comm_split(c->world, pc->replica, pc->stage, &pc->stages));
    MPI_CHECK(MPI_Comm_split(c->world, pc->stage, pc->replica, &pc->replicas));
}

void pipe_comms_free(struct pipe_comms *pc)
{
    MPI_Comm_free(&pc->stages);
    MPI_Comm_free(&pc->replicas);
}

void pipe_gather_params(const struct pipe_comms *pc, const struct comm *c,
                        const struct pipeline *pp, unsigned heads, struct bert_model *whole)
{
    const struct bert_model *m = &pp->model;
    const float *mine = (const float *)(const void *)m->params_arena.base;
    if (c->rank == 0) {
        float *dst = (float *)(void *)whole->params_arena.base;
        for (int s = 0; s < pc->S; s++) {
            struct bert_table tab;
            bert_param_table_slice(&tab, &m->cfg, s == pc->S - 1 ? heads : 0u, pp->first[s],
                                   pp->first[s + 1]);
            float *buf = NULL;
            const float *src = mine;
            if (s > 0) { /* world rank s is replica 0's stage s */
                buf = malloc(tab.floats * sizeof *buf);
                KD_ASSERT(buf, "out of memory gathering the teacher");
                MPI_CHECK(MPI_Recv(buf, (int)tab.floats, MPI_FLOAT, s, 77, c->world,
                                   MPI_STATUS_IGNORE));
                src = buf;
            }
            for (int i = 0; i < tab.n; i++) {
                const int j = bert_table_find(&whole->ptab, tab.t[i].name);
                KD_ASSERT(j >= 0, "tensor %s of stage %d not in the whole model",
                          tab.t[i].name, s);
                memcpy(dst + whole->ptab.t[j].offset, src + tab.t[i].offset,
                       (size_t)tab.t[i].numel * sizeof *dst);
            }
            free(buf);
            bert_table_free(&tab);
        }
    } else if (pc->replica == 0) {
        MPI_CHECK(MPI_Send(mine, (int)m->ptab.floats, MPI_FLOAT, 0, 77, c->world));
    }
}
