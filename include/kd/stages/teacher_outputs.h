/* teacher_outputs.h: what an extract stage stores (stages layer): the
 * stage's own outputs/hidden_layers/attention_layers keys, united with what
 * the loss terms of the distill stages after it need, as a store spec; and
 * the part of those stages' configuration the store depends on. */
#ifndef KD_STAGES_TEACHER_OUTPUTS_H
#define KD_STAGES_TEACHER_OUTPUTS_H

#include "kd/core/error.h"
#include "kd/io/dataset.h"
#include "kd/io/teacher_store.h"
#include "kd/job/job.h"
#include "kd/model/bert_config.h"

/* 1 if stage `stage` reads the store that extract stage `extract` writes:
 * an offline distill stage after it with no other extract stage between
 * (that one would rewrite teacher.h5). */
int teacher_outputs_reads_store(const struct job *job, int extract, int stage);

/* Fills spec (datasets, layers, heads, precision) for extract stage
 * `index` of job and a teacher cfg over dataset d (lengths borrowed): the
 * stage's outputs, hidden_layers, attention_layers and tokens, united with
 * kd_needs_of every loss of the stages that read the store (the student's
 * layer count from the student.* keys, as the distill stage builds it).
 * What the losses add is logged on rank 0 with the loss that needs it:
 * /logits; hidden layers (with [CLS] rows only when no loss compares every
 * token, and the stage's own tokens = "cls" widened to all tokens when one
 * does); attention layers. Layer lists come out ascending without repeats.
 * An unmappable loss is an error naming the distill stage, the loss and
 * the key. */
int teacher_outputs_spec(const struct job *job, int index, const struct bert_config *cfg,
                         const struct dataset *d, struct store_spec *spec, struct kd_err *err);

/* The configuration the store depends on beyond the extract stage's own
 * keys: one canonical line "reader.<stage>.losses.[i].<key> = <value>" per
 * need-deciding key (kind, map, student_layers, teacher_layers, tokens) of
 * every loss of the stages that read it (malloc'd; "" when none). The
 * runner appends it to the extract stage's fingerprint text, so a distill
 * loss that maps other layers makes the store out of date, while a new
 * weight or temperature does not. */
char *teacher_outputs_config(const struct job *job, int index);

/* Copies (n,t,H) rows into (n,T,H) with zero padding, and (n,NH,t,t) maps
 * into (n,NH,T,T). */
void teacher_pad_hidden(float *dst, const float *src, int64_t n, int64_t t, int64_t T,
                        int64_t H);
void teacher_pad_probs(float *dst, const float *src, int64_t n, int64_t NH, int64_t t,
                       int64_t T);

#endif
