/* dp_shard.c: one rank's rows of a global batch (parallel layer; pure
 * arithmetic, no MPI calls). Contract in include/kd/parallel/dp.h. */
#include "kd/parallel/dp.h"
#include "kd/parallel/layout.h"

int64_t dp_batch_shard(struct bert_batch *local, const struct bert_batch *global, int64_t C,
                       int rank, int size)
{
    KD_ASSERT(size > 0 && rank >= 0 && rank < size, "rank %d of %d", rank, size);
    long long begin, end;
    layout_shard(global->B, rank, size, &begin, &end);
    const int64_t T = global->T, P = global->P;
    *local = *global;
    local->B = end - begin;
    /* row-major (B, ...) arrays: row `begin` starts begin * (row size) in */
    if (global->input_ids)
        local->input_ids = global->input_ids + begin * T;
    if (global->token_type_ids)
        local->token_type_ids = global->token_type_ids + begin * T;
    if (global->attention_mask)
        local->attention_mask = global->attention_mask + begin * T;
    if (global->mlm_positions)
        local->mlm_positions = global->mlm_positions + begin * P;
    if (global->embedding_output)
        local->embedding_output = global->embedding_output + begin * T * C;
    /* dropout masks are indexed by the global example (bert.h) */
    local->first_example = global->first_example + (uint64_t)begin;
    return begin;
}
