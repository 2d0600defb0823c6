/* t_export_predict.c: kd_hpc's own prediction for one input, from a
 * Hugging Face directory as the export stage writes it (helper of
 * hf_load.sh, not a test by itself).
 *
 *   t_export_predict DIR TEXT_A [TEXT_B]
 *
 * Reads DIR/config.json and DIR/model.safetensors through the same path the
 * stages use (stage_model_open), tokenizes with DIR/vocab.txt (uncased, as
 * the job's data.lowercase default), runs the model in eval mode and prints
 *   ids: <token ids, [CLS] .. [SEP]>
 *   logits: <num_labels values, %.9g>
 * Exit 0, or 1 with the reason on stderr. */
#include "kd/core/fsutil.h"
#include "kd/model/hf_config.h"
#include "kd/model/tokenizer.h"
#include "kd/stages/stage_model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
    if (argc != 3 && argc != 4) {
        fprintf(stderr, "usage: t_export_predict DIR TEXT_A [TEXT_B]\n");
        return 1;
    }
    const char *dir = argv[1], *a = argv[2], *b = argc == 4 ? argv[3] : NULL;
    struct kd_err err = {0};
    struct bert_config cfg;
    char *cfg_path = fs_path_join(dir, "config.json"), *vocab = fs_path_join(dir, "vocab.txt");
    tokenizer_t *tok = NULL;
    int rc = 1;
    if (hf_config_read(cfg_path, &cfg, NULL, &err) || tokenizer_load(&tok, vocab, 1, &err)) {
        fprintf(stderr, "t_export_predict: %s\n", err.msg);
        goto out;
    }
    const int64_t T = cfg.max_position_embeddings < 128 ? cfg.max_position_embeddings : 128;
    int32_t *ids = calloc((size_t)T, sizeof *ids), *types = calloc((size_t)T, sizeof *types),
            *mask = calloc((size_t)T, sizeof *mask);
    const int64_t n = tokenizer_encode(tok, a, strlen(a), b, b ? strlen(b) : 0, T, ids, types,
                                       mask, &err);
    if (n < 0) {
        fprintf(stderr, "t_export_predict: %s\n", err.msg);
        free(ids), free(types), free(mask);
        goto out;
    }
    struct bert_opts o = {.B = 1, .T = n, .heads = BERT_HEAD_CLASSIFIER};
    struct bert_model m;
    if (stage_model_open(&m, &cfg, &o, dir, 1, &err)) {
        fprintf(stderr, "t_export_predict: %s: %s\n", dir, err.msg);
        free(ids), free(types), free(mask);
        goto out;
    }
    /* the real tokens only: no padding, as transformers sees one sentence */
    struct bert_batch batch = {.B = 1, .T = n, .input_ids = ids, .token_type_ids = types,
                               .attention_mask = mask};
    bert_forward(&m, &batch);
    printf("ids:");
    for (int64_t i = 0; i < n; i++)
        printf(" %d", ids[i]);
    printf("\nlogits:");
    const float *z = bert_logits(&m);
    for (int64_t k = 0; k < cfg.num_labels; k++)
        printf(" %.9g", z[k]);
    printf("\n");
    bert_free(&m);
    free(ids), free(types), free(mask);
    rc = 0;
out:
    tokenizer_free(tok);
    free(cfg_path), free(vocab);
    return rc;
}
