/* teacher_outputs.h: what an extract stage stores (stages layer): the
 * stage's own outputs/hidden_layers/attention_layers keys, united with what
 * the loss terms of the distill stages after it need, as a store spec. */
#ifndef KD_STAGES_TEACHER_OUTPUTS_H
#define KD_STAGES_TEACHER_OUTPUTS_H

#include "kd/core/error.h"
#include "kd/io/dataset.h"
#include "kd/io/teacher_store.h"
#include "kd/job/job.h"
#include "kd/model/bert_config.h"

/* Fills spec (datasets, layers, heads, precision) for extract stage
 * `index` of job and a teacher cfg over dataset d (lengths borrowed). */
int teacher_outputs_spec(const struct job *job, int index, const struct bert_config *cfg,
                         const struct dataset *d, struct store_spec *spec, struct kd_err *err);

/* Copies (n,t,H) rows into (n,T,H) with zero padding, and (n,NH,t,t) maps
 * into (n,NH,T,T). */
void teacher_pad_hidden(float *dst, const float *src, int64_t n, int64_t t, int64_t T,
                        int64_t H);
void teacher_pad_probs(float *dst, const float *src, int64_t n, int64_t NH, int64_t t,
                       int64_t T);

#endif
