/* t_bert_memory.c: the memory bound of the BERT model (what `--dry-run`
 * prints) against what is allocated and what the process really uses.
 *
 *  - bert_memory_bound() equals the arenas bert_init maps, block by block,
 *    for inference, input-gradient (IG) and training options, full and
 *    pruned layouts;
 *  - the parameter table of a BERT-base BertModel counts 109,482,240
 *    parameters (transformers' number for bert-base-uncased), with less
 *    than 16 floats of alignment padding per tensor;
 *  - peak RSS of one full training step (random init, forward, loss,
 *    backward, and a pass over Adam m and v standing in for the optimizer)
 *    stays within 1.25x the bound, and so does loading a checkpoint into an
 *    inference model (file pages are read, not mapped). The process's own baseline (code,
 *    libraries, OpenBLAS buffers) counts against the 1.25x, so the model
 *    must be large enough for the bound to mean something: by default a
 *    4-layer, 256-wide model with BERT's 30522-word vocabulary at B = 8,
 *    T = 128 (bound ~ 0.3 GB); KD_BERT_RSS=base runs BERT-base (12/768/3072,
 *    ~2.5 GB, about 10 s), KD_BERT_RSS=base-infer its inference setting. */
#include "../tap.h"
#include "bert_testutil.h"
#include "kd/core/log.h"
#include "kd/model/bert.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* VmHWM / VmRSS of this process in bytes (0 if /proc is unavailable). */
static size_t proc_status_kb(const char *key)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return 0;
    char line[256];
    size_t kb = 0, n = strlen(key);
    while (fgets(line, sizeof line, f))
        if (strncmp(line, key, n) == 0 && line[n] == ':')
            kb = strtoull(line + n + 1, NULL, 10);
    fclose(f);
    return kb * 1024;
}

static void check_bound_matches(const char *what, const struct bert_config *cfg,
                                const struct bert_opts *o)
{
    struct bert_memory mem = bert_memory_bound(cfg, o);
    struct bert_model m;
    struct kd_err err;
    if (bert_init(&m, cfg, o, &err) != 0)
        bail_out("%s", err.msg);
    ok(mem.params == m.params_arena.size && mem.grads == m.grads_arena.size &&
           mem.optimizer == m.optim_arena.size && mem.activations == m.acts_arena.size &&
           mem.grad_activations == m.gacts_arena.size &&
           mem.total == mem.params + mem.grads + mem.optimizer + mem.activations +
                            mem.grad_activations,
       "%s: bound = mapped arenas (params %zu, grads %zu, optimizer %zu, activations %zu, "
       "activation grads %zu bytes)",
       what, mem.params, mem.grads, mem.optimizer, mem.activations, mem.grad_activations);
    bert_free(&m);
}

static void base_config(struct bert_config *cfg)
{
    bt_tiny_config(cfg, 12, 12, 64, 3072, 30522, 512, 2);
}

static void param_count(void)
{
    struct bert_config cfg;
    base_config(&cfg);
    struct bert_table tab;
    bert_param_table(&tab, &cfg, BERT_HEAD_POOLER);
    int64_t n = 0;
    for (int i = 0; i < tab.n; i++)
        n += tab.t[i].numel;
    ok(n == 109482240, "BERT-base BertModel: %lld parameters (transformers: 109482240)",
       (long long)n);
    ok(tab.floats - (size_t)n < (size_t)tab.n * 16,
       "alignment padding %zu floats over %d tensors", tab.floats - (size_t)n, tab.n);
    bert_table_free(&tab);
}

/* One training (or inference) step at full size; returns peak RSS / bound. */
static void rss_step(const char *what, const struct bert_config *cfg, int64_t B, int64_t T,
                     int train)
{
    struct bert_opts o = {.B = B, .T = T, .heads = BERT_HEAD_CLASSIFIER, .backward = train,
                          .param_grads = train, .optimizer = train, .seed = 3};
    struct bert_memory mem = bert_memory_bound(cfg, &o);
    const size_t base_rss = proc_status_kb("VmRSS");
    struct bert_model m;
    struct kd_err err;
    if (bert_init(&m, cfg, &o, &err) != 0)
        bail_out("%s", err.msg);
    bert_init_random(&m, 5, 0.02f);
    int32_t *ids = malloc((size_t)(B * T) * sizeof(int32_t));
    int32_t *mask = malloc((size_t)(B * T) * sizeof(int32_t));
    int32_t labels[64];
    for (int64_t i = 0; i < B * T; i++) {
        ids[i] = (int32_t)((i * 7919) % cfg->vocab_size);
        mask[i] = 1;
    }
    for (int64_t b = 0; b < B; b++)
        labels[b] = (int32_t)(b % cfg->num_labels);
    struct bert_batch batch = {.B = B, .T = T, .input_ids = ids, .attention_mask = mask,
                               .train = train, .step = 1};
    double t0 = wall_seconds();
    bert_forward(&m, &batch);
    if (train) {
        bert_zero_grads(&m);
        bert_loss_classification(&m, labels, m.ga.dlogits, 1.0f);
        struct bert_grad_in g;
        memset(&g, 0, sizeof g);
        g.dlogits = m.ga.dlogits;
        bert_backward(&m, &g);
        /* the optimizer writes every element of m and v */
        memset(m.adam_m, 0, m.ptab.floats * sizeof(float));
        memset(m.adam_v, 0, m.ptab.floats * sizeof(float));
    }
    double dt = wall_seconds() - t0;
    const size_t peak = proc_status_kb("VmHWM");
    const double ratio = (double)peak / (double)mem.total;
    if (peak == 0) {
        skip(1, "no /proc/self/status");
    } else {
        ok(ratio <= 1.25, "%s: peak RSS %.1f MiB / bound %.1f MiB = %.3f <= 1.25 "
                          "(RSS before init %.1f MiB; step %.2f s)",
           what, (double)peak / 1048576.0, (double)mem.total / 1048576.0, ratio,
           (double)base_rss / 1048576.0, dt);
    }
    free(ids), free(mask);
    bert_free(&m);
}

/* Loading a checkpoint into an inference model: the file's pages must not
 * add to the peak (they would if tensors were copied out of the reader's
 * mapping). The peak is reset after saving the checkpoint. */
static void rss_load(const struct bert_config *cfg)
{
    struct bert_opts o = {.B = 8, .T = 128, .heads = BERT_HEAD_CLASSIFIER, .seed = 3};
    struct bert_model m;
    struct kd_err err;
    char *dir = bt_tmpdir();
    if (bert_init(&m, cfg, &o, &err) != 0)
        bail_out("%s", err.msg);
    bert_init_random(&m, 5, 0.02f);
    if (bert_save_dir(&m, dir, NULL, NULL, &err) != 0)
        bail_out("%s", err.msg);
    bert_free(&m);
    FILE *f = fopen("/proc/self/clear_refs", "w"); /* "5": reset the peak RSS */
    int reset = f && fputs("5", f) >= 0;
    if (f)
        reset &= fclose(f) == 0;
    if (bert_load_dir(&m, dir, &o, NULL, &err) != 0)
        bail_out("%s", err.msg);
    const size_t peak = proc_status_kb("VmHWM");
    struct bert_memory mem = bert_memory_bound(cfg, &o);
    if (!reset || peak == 0)
        skip(1, "cannot reset the peak RSS (/proc/self/clear_refs)");
    else
        ok((double)peak / (double)mem.total <= 1.25,
           "inference model loaded from model.safetensors: peak RSS %.1f MiB / bound %.1f MiB "
           "= %.3f <= 1.25", (double)peak / 1048576.0, (double)mem.total / 1048576.0,
           (double)peak / (double)mem.total);
    bert_free(&m);
    bt_rmtree(dir), free(dir);
}

int main(void)
{
    log_set_level(LOG_LEVEL_ERROR);
    const char *big = getenv("KD_BERT_RSS");
    struct bert_config cfg;
    if (big && strcmp(big, "base") == 0) {
        base_config(&cfg);
        rss_step("BERT-base training step, B 8, T 128", &cfg, 8, 128, 1);
        return done_testing();
    }
    if (big && strcmp(big, "base-infer") == 0) {
        base_config(&cfg);
        rss_step("BERT-base inference, B 8, T 128", &cfg, 8, 128, 0);
        return done_testing();
    }

    /* bound = allocation, for the usual option sets */
    bt_tiny_config(&cfg, 3, 4, 8, 48, 90, 32, 3);
    struct bert_opts o = {.B = 3, .T = 20, .P = 4, .heads = BERT_HEAD_CLASSIFIER | BERT_HEAD_MLM,
                          .seed = 1};
    check_bound_matches("inference", &cfg, &o);
    o.backward = 1;
    check_bound_matches("input gradients (IG)", &cfg, &o);
    o.param_grads = o.optimizer = 1;
    check_bound_matches("training", &cfg, &o);
    cfg.layer_heads[1] = 0, cfg.layer_head_mask[1] = 0;
    cfg.layer_intermediate[2] = 0;
    check_bound_matches("training, pruned", &cfg, &o);
    param_count();

    /* peak RSS of a real training step */
    bt_tiny_config(&cfg, 4, 4, 64, 1024, 30522, 512, 2);
    rss_step("4/256/1024, V 30522, training step, B 8, T 128", &cfg, 8, 128, 1);
    rss_load(&cfg);
    return done_testing();
}
