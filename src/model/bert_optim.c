/* bert_optim.c: the model's parameter block as optimizer segments. */
#include "kd/model/bert.h"
#include "kd/model/optim.h"

#include <stdlib.h>

struct optim_segment *bert_optim_segments(const struct bert_model *m)
{
    struct optim_segment *segs = calloc((size_t)m->ptab.n, sizeof *segs);
    if (!segs)
        return NULL;
    for (int i = 0; i < m->ptab.n; i++)
        segs[i] = (struct optim_segment){m->ptab.t[i].offset, (size_t)m->ptab.t[i].numel,
                                         m->ptab.t[i].decay, m->ptab.t[i].name};
    return segs;
}
