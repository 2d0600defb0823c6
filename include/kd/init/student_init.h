/* student_init.h: initialising a student BERT from its teacher (init layer:
 * above model and parallel; uses bert_model's parameter block and the
 * ScaLAPACK drivers of parallel/scalapack.h, never MPI directly).
 *
 * Every initialiser fills EVERY student tensor: it starts from Hugging
 * Face's random initialisation (bert_init_random(seed, std)) and overwrites
 * what it derives from the teacher, so the student's memory may hold
 * anything before. Student and teacher must share the vocabulary (an error
 * names both sizes otherwise).
 *
 * Layer map: student layer j (0-based) takes teacher layer map[j] (1-based,
 * as job.cfg's student.init_layers). NULL / n = 0 takes the uniform map
 * map[j] = (j+1) * L_t / L_s: the last layer of each of L_s equal groups,
 * e.g. 2, 4, ..., 12 for 12 -> 6 (METHODS.md §2: student j <-> teacher 2j).
 *
 * Methods (job.h enum student_init; fit_projection is a separate step):
 *   random          student_init_random
 *   teacher_layers  student_init_teacher_layers: exact copies, equal widths
 *   pca             student_pca_basis + student_init_pca: a narrower student
 *                   living in the top-k principal subspace of the teacher's
 *                   hidden states (k = student hidden size)
 *   fit_projection  student_fit_projection: PDGELS fit of the linear map
 *                   student hidden -> teacher hidden, to initialise the
 *                   learned projection of a hidden-state loss */
#ifndef KD_INIT_STUDENT_INIT_H
#define KD_INIT_STUDENT_INIT_H

#include <stdint.h>

#include "kd/core/error.h"
#include "kd/model/bert.h"
#include "kd/parallel/scalapack.h"

/* Standard deviation of the random part (BERT's initializer_range). */
#define STUDENT_INIT_STD 0.02f

/* Fills map[0..L_s) from layers (1-based teacher layers, n of them) or the
 * uniform map when n == 0. Error if n != L_s or a layer is outside
 * [1, L_t], naming the values. */
int student_layer_map(int64_t *map, const int64_t *layers, int n, int64_t L_s, int64_t L_t,
                      struct kd_err *err);

/* Hugging Face's random initialisation of every tensor (seed, std 0.02). */
void student_init_random(struct bert_model *s, uint64_t seed);

/* Copies the embeddings (word, the first max_position_embeddings_s
 * positions, token types, LayerNorm), every mapped layer, and the heads
 * both models have with equal shapes (pooler; classifier if num_labels
 * match; MLM transform and bias). Requires equal hidden sizes, and per
 * mapped layer equal head counts and FFN widths, student positions and
 * token types <= the teacher's; otherwise an error naming the layer and
 * both sizes (and nothing is guaranteed about s). Exact copies: the student
 * reproduces the teacher's layers bit for bit. */
int student_init_teacher_layers(struct bert_model *s, const struct bert_model *t,
                                const int64_t *layers, int n, uint64_t seed, struct kd_err *err);

/* ---- pca ----------------------------------------------------------------
 *
 * Basis: U (C_t, k) = the top-k principal axes of the teacher's hidden
 * states h_0 and h_map[j] (every real token, every mapped layer pooled: one
 * basis for the whole residual stream, so that residual sums stay in one
 * coordinate system), mean m, and c = (I - U U^T) m, the mean's part
 * outside the subspace. Student coordinates: z = U^T h_t, so h_t ~ U z + c.
 *
 * What student_init_pca sets (C = C_t, k = C_s; W x means x W^T as nn.Linear):
 *   embeddings    word, position, type tables E_s = E_t U
 *   LayerNorms    gamma_s = a * diag(U^T diag(gamma_t) U), beta_s = U^T beta_t,
 *                 one scalar a per LayerNorm such that the student's LN
 *                 output has the second moment of the projected teacher
 *                 states: a^2 |diag|^2 + |beta_s|^2 = E|U^T h_t|^2 (= sum
 *                 of the k variances + |U^T m|^2; the normalised vector has
 *                 unit mean square per coordinate). Measured on the
 *                 ablation: MSE 0.349 against 0.437 for the RMS argument
 *                 a = sqrt(f C_t / k) tried first.
 *   attention     per kept head, the QK circuit [W_q U | W_q c + b_q]^T
 *                 [W_k U | W_k c + b_k] ((k+1)x(k+1), rank HS_t) and the OV
 *                 circuit (U^T W_o)(W_v [U | c] + b_v e^T) (k x (k+1)) are
 *                 replaced by their best rank-HS_s approximations (SVD,
 *                 Eckart-Young), factored into the student's query/key and
 *                 value/output weights and biases; exact when HS_s >= HS_t.
 *                 The query side carries sqrt(HS_s / HS_t) so that scores
 *                 divided by sqrt(HS_s) equal the teacher's divided by
 *                 sqrt(HS_t). Kept heads: the NH_s with the largest OV norm,
 *                 in teacher order. Extra student heads (NH_s > NH_t) keep
 *                 random Q, K, V and a zero output (they start silent).
 *                 Output bias U^T b_o.
 *   FFN           the F_s neurons with the largest |U^T W_2[:,i]| * |row i
 *                 of [W_1 U | W_1 c + b_1]| keep their weights: W_1,s =
 *                 W_1[sel] U, b_1,s = b_1[sel] + W_1[sel] c, W_2,s =
 *                 U^T W_2[:,sel], b_2,s = U^T b_2. Extra neurons: random
 *                 input, zero output weights.
 *   mlm bias      copied (same vocabulary; the decoder is tied to E_s).
 *   random        pooler, classifier and the MLM transform: they act after
 *                 elementwise tanh / GELU in the teacher's own coordinates,
 *                 which a change of basis does not commute with.
 * LayerNorm does not commute with the projection either (it normalises
 * over C_t, not k dims), so deeper layers match only approximately; the
 * ablation test (tests/mpi/p_linalg_init.c) measures how much: with U the
 * error grows with depth (at the deepest pair of a 4 -> 2 layer, 64 -> 32
 * random teacher it exceeds the mean predictor's), a fitted projection
 * (student_fit_projection) recovers most of it.
 *
 * Teacher and student must be whole models (not pipeline slices). */

/* Runs the teacher forward (eval) on this rank's batch, gathers its real
 * tokens' hidden states h_0 and h_map[j], and computes the top-k PCA over
 * all ranks of g (collective; a rank may pass batch->B == 0). */
int student_pca_basis(struct scalapack_pca *basis, const struct scalapack_grid *g,
                      struct bert_model *t, const struct bert_batch *batch, const int64_t *map,
                      int64_t L_s, int64_t k, struct kd_err *err);

/* Initialises s from t in the basis (basis->k must equal s's hidden size,
 * basis->d t's). layers / n as student_layer_map. */
int student_init_pca(struct bert_model *s, const struct bert_model *t,
                     const struct scalapack_pca *basis, const int64_t *layers, int n,
                     uint64_t seed, struct kd_err *err);

/* h_t ~ U z + c: writes the teacher-space image of n student rows z (n,k)
 * into out (n, C_t). */
void student_pca_backproject(float *out, const struct scalapack_pca *basis, const float *z,
                             int64_t n);

/* ---- fit_projection --------------------------------------------------- */

/* Copies the hidden states of layer l of m's last forward at the real
 * tokens (attention_mask 1; all tokens if mask is NULL) into rows (n, C),
 * in batch order; returns n. rows needs B*T*C floats at most. */
int64_t student_token_rows(float *rows, const struct bert_model *m, int64_t l,
                           const int32_t *mask, int64_t B, int64_t T);

/* Least-squares fit over all ranks of g of h_t ~ h_s W^T + b from n_local
 * row pairs (student rows (n_local, C_s), teacher rows (n_local, C_t)): the
 * initial weight (C_t, C_s) and bias (C_t) (nn.Linear layout; bias may be
 * NULL for no intercept) of a hidden-state loss projection. ridge >= 0 as
 * in scalapack_lstsq_opts. *r2 (may be NULL) receives 1 - rss/tss. */
int student_fit_projection(float *weight, float *bias, double *r2,
                           const struct scalapack_grid *g, const float *student_rows,
                           const float *teacher_rows, int64_t n_local, int64_t C_s, int64_t C_t,
                           double ridge, struct kd_err *err);

/* Sum over this rank's n rows of ||h_t - (h_s W^T + b)||^2 (double), for
 * student rows (n, C_s), teacher rows (n, C_t), weight (C_t, C_s) and bias
 * (C_t, or NULL); the residual a projection leaves, before or after a fit.
 * No communication: the caller sums over ranks. */
double student_projection_sse(const float *weight, const float *bias, const float *student_rows,
                              const float *teacher_rows, int64_t n, int64_t C_s, int64_t C_t);

#endif
