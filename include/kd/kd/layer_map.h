/* layer_map.h: which student layer is compared with which teacher layer, for
 * the layer-wise loss terms (hidden, attention) of a distill stage (kd layer;
 * knows nothing of MPI; reads struct loss_cfg of job.h as plain data only).
 *
 * Numbering is the job file's and the teacher store's: layer l >= 1 is the
 * output (hidden) or the attention of encoder layer l (1-based), and layer 0
 * is the embedding output h_0. In bert.h terms, hidden layer l is
 * bert_hidden(m, l) and attention layer l is bert_probs(m, l - 1).
 *
 * Maps (loss_cfg.map), for L_s student and L_t teacher layers:
 *   uniform   student j <-> teacher floor(j * L_t / L_s), j = 1..L_s.
 *             12 -> 6 gives 2,4,6,8,10,12 (Aguilar et al.'s "every other
 *             layer"); 12 -> 5 gives 2,4,7,9,12. It never includes the
 *             embeddings: the methods that pair h_0 (TinyBERT) ask for it
 *             through an explicit map (0 <-> 0), and Aguilar's PID/SID count
 *             phases over transformer layers only. Needs L_s <= L_t.
 *   last      student L_s <-> teacher L_t (one pair).
 *   explicit  student_layers[i] <-> teacher_layers[i]: equal lengths, at
 *             least one pair, no student layer twice, every layer in range.
 *             Layer 0 is allowed on both sides for hidden terms (embedding
 *             outputs have no attention, so attention terms need >= 1).
 * Pairs are kept sorted by student layer.
 *
 * Every error message starts with the loss's place, "losses.[I] (KIND, line
 * N)" (or "(KIND, from --set)" when the line is 0), names the layers and the
 * numbers, and suggests the fix when there is an obvious one. */
#ifndef KD_KD_LAYER_MAP_H
#define KD_KD_LAYER_MAP_H

#include <stddef.h>
#include <stdint.h>

#include "kd/core/error.h"
#include "kd/job/job.h"
#include "kd/model/bert_config.h"

#define KD_MAX_PAIRS (BERT_MAX_LAYERS + 1)

struct kd_layer_pair {
    int32_t student; /* 0 = embeddings, l = encoder layer l (1-based) */
    int32_t teacher; /* the same numbering in the teacher */
};

struct kd_layer_map {
    int n;                                   /* pairs, >= 1 once resolved */
    struct kd_layer_pair pair[KD_MAX_PAIRS]; /* ascending student layer */
};

/* "losses.[index] (kind, line N)" into buf (n bytes); returns buf. The
 * prefix of every message about one loss term. */
const char *kd_loss_where(char *buf, size_t n, int index, const struct loss_cfg *cfg);

/* Resolves cfg's map for student_layers (L_s) and teacher_layers (L_t).
 * allow_embeddings: layer 0 may appear in an explicit map (hidden terms).
 * index: the term's position in the stage's loss list (for messages).
 * Returns 0, or -1 with a message in err. */
int kd_layer_map_resolve(struct kd_layer_map *out, const struct loss_cfg *cfg, int index,
                         int64_t student_layers, int64_t teacher_layers, int allow_embeddings,
                         struct kd_err *err);

#endif
