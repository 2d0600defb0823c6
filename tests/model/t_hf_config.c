/* t_hf_config.c: config.json <-> struct bert_config.
 *
 *  - good files written by transformers (tests/gen/make_checkpoint_cases.py):
 *    BERT-base defaults, head-pruned, regression, id2label names; the model
 *    fixtures of tests/fixtures/models when present (FFN-pruned included)
 *  - defaults of a minimal file, model_type absent, null values
 *  - every bad value rejected with the file, the key, expected and found
 *  - writer -> reader round trip (pruned heads, FFN widths, labels,
 *    regression, null pad/classifier dropout), keys transformers needs,
 *    writer refusals. */
#include "kd/core/fsutil.h"
#include "kd/core/log.h"
#include "kd/model/hf_config.h"
#include "../tap.h"
#include "ckpt_util.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int read_fixture(const char *rel, struct bert_config *c, struct hf_labels *lab)
{
    char *p = ckpt_fixture(rel);
    struct kd_err err;
    int rc = hf_config_read(p, c, lab, &err);
    if (rc != 0)
        diag("%s", err.msg);
    free(p);
    return rc;
}

static void test_good_files(void)
{
    struct bert_config c;
    struct hf_labels lab;

    int rc = read_fixture("configs/bert_base.json", &c, &lab);
    int uniform = 1;
    for (int l = 0; l < 12; l++)
        uniform &= c.layer_heads[l] == 12 && c.layer_intermediate[l] == 3072 &&
                   c.layer_head_mask[l] == 0xfff;
    ok(rc == 0 && c.vocab_size == 30522 && c.hidden_size == 768 && c.num_hidden_layers == 12 &&
       c.num_attention_heads == 12 && c.intermediate_size == 3072 &&
       c.max_position_embeddings == 512 && c.type_vocab_size == 2 && c.pad_token_id == 0 &&
       c.layer_norm_eps == 1e-12 && c.hidden_dropout_prob == 0.1 &&
       c.attention_probs_dropout_prob == 0.1 && c.classifier_dropout < 0 &&
       c.num_labels == 2 && c.problem == BERT_PROBLEM_CLASSIFICATION && uniform,
       "BERT-base config.json: sizes, defaults, unpruned layers");
    ok(rc == 0 && lab.count == 2 && !lab.from_file && strcmp(lab.names[1], "LABEL_1") == 0,
       "no id2label: generated names LABEL_0, LABEL_1");
    if (rc == 0)
        hf_labels_free(&lab);

    rc = read_fixture("configs/pruned.json", &c, NULL);
    ok(rc == 0 && c.num_hidden_layers == 3 && c.layer_heads[0] == 2 && c.layer_heads[1] == 4 &&
       c.layer_heads[2] == 3 && c.layer_head_mask[0] == 0x5 && c.layer_head_mask[1] == 0xf &&
       c.layer_head_mask[2] == 0xe && c.layer_intermediate[2] == 16,
       "pruned_heads from transformers' prune_heads fill layer_heads and masks");

    rc = read_fixture("configs/regression.json", &c, &lab);
    ok(rc == 0 && c.num_labels == 1 && c.problem == BERT_PROBLEM_REGRESSION && lab.count == 1,
       "num_labels 1 (from id2label) means regression");
    if (rc == 0)
        hf_labels_free(&lab);

    rc = read_fixture("configs/labels.json", &c, &lab);
    ok(rc == 0 && c.num_labels == 3 && lab.from_file && strcmp(lab.names[0], "contradiction") == 0
       && strcmp(lab.names[2], "neutral") == 0 && c.classifier_dropout == 0.25 &&
       c.pad_token_id == 3 && c.problem == BERT_PROBLEM_CLASSIFICATION,
       "id2label names, classifier_dropout and pad_token_id");
    if (rc == 0)
        hf_labels_free(&lab);

    rc = read_fixture("seqcls/config.json", &c, &lab);
    ok(rc == 0 && c.num_labels == 3 && strcmp(lab.names[1], "neu") == 0,
       "config.json of the sharded fixture (save_pretrained)");
    if (rc == 0)
        hf_labels_free(&lab);

    /* the model fixtures of the BERT tests, when that directory exists */
    char *models = ckpt_srcpath("tests/fixtures/models");
    DIR *d = opendir(models);
    if (!d) {
        skip(1, "tests/fixtures/models absent");
    } else {
        int n = 0, bad = 0, ffn = 0;
        struct kd_err err;
        for (struct dirent *de; (de = readdir(d));) {
            if (de->d_name[0] == '.')
                continue;
            char rel[600];
            snprintf(rel, sizeof rel, "%s/config.json", de->d_name);
            char *p = fs_path_join(models, rel);
            if (fs_file_exists(p)) {
                n++;
                if (hf_config_read(p, &c, NULL, &err) != 0) {
                    diag("%s", err.msg);
                    bad++;
                }
                for (int l = 0; l < c.num_hidden_layers; l++)
                    ffn += c.layer_intermediate[l] != c.intermediate_size;
            }
            free(p);
        }
        closedir(d);
        ok(bad == 0, "all %d config.json files of tests/fixtures/models read (%d FFN-pruned "
           "layers)", n, ffn);
    }
    free(models);
}

/* Parses JSON text given inline; "path" names it in messages. */
static int parse(const char *json, struct bert_config *c, struct hf_labels *lab,
                 struct kd_err *err)
{
    return hf_config_parse(json, strlen(json), "inline/config.json", c, lab, err);
}

/* model_type, and the five required keys of a small valid config */
#define MT "\"model_type\": \"bert\", "
#define REQ MT "\"vocab_size\": 100, \"hidden_size\": 64, \"num_hidden_layers\": 2, " \
            "\"num_attention_heads\": 4, \"intermediate_size\": 128"

static void test_defaults(void)
{
    struct bert_config c;
    struct hf_labels lab;
    struct kd_err err;
    int rc = parse("{" REQ "}", &c, &lab, &err);
    ok(rc == 0 && c.max_position_embeddings == 512 && c.type_vocab_size == 2 &&
       c.layer_norm_eps == 1e-12 && c.hidden_dropout_prob == 0.1 &&
       c.attention_probs_dropout_prob == 0.1 && c.classifier_dropout == -1 &&
       c.pad_token_id == 0 && c.num_labels == 2 && c.layer_heads[1] == 4 &&
       c.layer_intermediate[1] == 128 && lab.count == 2,
       "minimal file: BertConfig defaults for every optional key");
    if (rc == 0)
        hf_labels_free(&lab);
    rc = parse("{\"vocab_size\": 100, \"hidden_size\": 64, \"num_hidden_layers\": 2, "
               "\"num_attention_heads\": 4, \"intermediate_size\": 128}", &c, NULL, &err);
    ok(rc == 0 && c.hidden_size == 64, "model_type absent: accepted with a warning");
    rc = parse("{\"pad_token_id\": null, \"classifier_dropout\": "
               "null, \"problem_type\": null, \"pruned_heads\": {}, " REQ "}", &c, NULL, &err);
    ok(rc == 0 && c.pad_token_id == -1 && c.classifier_dropout == -1,
       "null pad_token_id (-1: no padding index) and null classifier_dropout");
    rc = parse("{\"num_labels\": 5, " REQ "}", &c, &lab, &err);
    ok(rc == 0 && c.num_labels == 5 && lab.count == 5 && strcmp(lab.names[4], "LABEL_4") == 0,
       "num_labels without id2label");
    if (rc == 0)
        hf_labels_free(&lab);
    rc = parse("{\"problem_type\": \"regression\", \"num_labels\": 3, " REQ "}", &c, NULL,
               &err);
    ok(rc == 0 && c.problem == BERT_PROBLEM_REGRESSION && c.num_labels == 3,
       "problem_type regression with 3 outputs");
    rc = parse("{\"kd_hpc_intermediate_sizes\": [100, 0], \"pruned_heads\": {\"1\": [0, 1, 2, "
               "3]}, " REQ "}", &c, NULL, &err);
    ok(rc == 0 && c.layer_intermediate[0] == 100 && c.layer_intermediate[1] == 0 &&
       c.layer_heads[1] == 0 && c.layer_head_mask[1] == 0,
       "kd_hpc_intermediate_sizes and a layer with all heads pruned");
}

static void test_bad_values(const char *tmp)
{
    const struct {
        const char *what, *json, *sub1, *sub2, *sub3;
    } cases[] = {
        {"missing vocab_size", "{" MT "\"hidden_size\": 64, \"num_hidden_layers\": 2, "
         "\"num_attention_heads\": 4, \"intermediate_size\": 128}", "key 'vocab_size'",
         "expected a positive integer (required key)", "got nothing (key absent)"},
        {"missing intermediate_size", "{" MT "\"vocab_size\": 100, \"hidden_size\": 64, "
         "\"num_hidden_layers\": 2, \"num_attention_heads\": 4}", "key 'intermediate_size'",
         "required key", NULL},
        {"hidden_size as a string", "{" MT "\"vocab_size\": 100, \"hidden_size\": \"64\", "
         "\"num_hidden_layers\": 2, \"num_attention_heads\": 4, \"intermediate_size\": 128}",
         "key 'hidden_size'", "expected a positive integer", "got \"64\""},
        {"hidden_size fractional", "{" MT "\"vocab_size\": 100, \"hidden_size\": 64.5, "
         "\"num_hidden_layers\": 2, \"num_attention_heads\": 4, \"intermediate_size\": 128}",
         "key 'hidden_size'", "got 64.5", NULL},
        {"vocab_size absurd", "{" MT "\"vocab_size\": 1e300, \"hidden_size\": 64, "
         "\"num_hidden_layers\": 2, \"num_attention_heads\": 4, \"intermediate_size\": 128}",
         "key 'vocab_size'", "expected a positive integer <= 2^40", "got 1e+300"},
        {"hidden_size not divisible by heads", "{" MT "\"vocab_size\": 100, \"hidden_size\": 770, "
         "\"num_hidden_layers\": 2, \"num_attention_heads\": 12, \"intermediate_size\": 128}",
         "key 'hidden_size'", "expected a multiple of num_attention_heads (12)", "got 770"},
        {"zero layers", "{" MT "\"vocab_size\": 100, \"hidden_size\": 64, "
         "\"num_hidden_layers\": 0, "
         "\"num_attention_heads\": 4, \"intermediate_size\": 128}", "key 'num_hidden_layers'",
         "expected an integer in [1, 128]", "got 0"},
        {"too many heads", "{" MT "\"vocab_size\": 100, \"hidden_size\": 128, "
         "\"num_hidden_layers\": 2, \"num_attention_heads\": 128, \"intermediate_size\": 128}",
         "key 'num_attention_heads'", "expected an integer in [1, 64]", "got 128"},
        {"unknown hidden_act", "{\"hidden_act\": \"relu\", " REQ "}", "key 'hidden_act'",
         "expected \"gelu\" (exact erf GELU is the only activation implemented)",
         "got \"relu\""},
        {"gelu_new is not gelu", "{\"hidden_act\": \"gelu_new\", " REQ "}",
         "key 'hidden_act'", "got \"gelu_new\"", NULL},
        {"hidden_act not a string", "{\"hidden_act\": 1, " REQ "}", "key 'hidden_act'",
         "got 1", NULL},
        {"model_type roberta", "{\"model_type\": \"roberta\", " REQ "}", "key 'model_type'",
         "expected \"bert\"", "got \"roberta\""},
        {"relative position embeddings", "{\"position_embedding_type\": \"relative_key\", "
         REQ "}", "key 'position_embedding_type'", "expected \"absolute\"",
         "got \"relative_key\""},
        {"max_position_embeddings negative", "{\"max_position_embeddings\": -5, " REQ "}",
         "key 'max_position_embeddings'", "got -5", NULL},
        {"type_vocab_size null", "{\"type_vocab_size\": null, " REQ "}",
         "key 'type_vocab_size'", "got null", NULL},
        {"layer_norm_eps zero", "{\"layer_norm_eps\": 0, " REQ "}", "key 'layer_norm_eps'",
         "expected a number in (0, 1)", "got 0"},
        {"layer_norm_eps string", "{\"layer_norm_eps\": \"1e-12\", " REQ "}",
         "key 'layer_norm_eps'", "got \"1e-12\"", NULL},
        {"dropout above 1", "{\"hidden_dropout_prob\": 1.5, " REQ "}",
         "key 'hidden_dropout_prob'", "expected a number in [0, 1)", "got 1.5"},
        {"attention dropout negative", "{\"attention_probs_dropout_prob\": -0.1, " REQ "}",
         "key 'attention_probs_dropout_prob'", "got -0.1", NULL},
        {"classifier_dropout string", "{\"classifier_dropout\": \"0.1\", " REQ "}",
         "key 'classifier_dropout'", "got \"0.1\"", NULL},
        {"pad_token_id beyond vocab", "{\"pad_token_id\": 100, " REQ "}",
         "key 'pad_token_id'", "expected an integer in [0, 99]", "got 100"},
        {"id2label as array", "{\"id2label\": [\"a\", \"b\"], " REQ "}", "key 'id2label'",
         "expected an object", "got [\"a\",\"b\"]"},
        {"id2label key not an id", "{\"id2label\": {\"0\": \"a\", \"x\": \"b\"}, " REQ "}",
         "key 'id2label'", "expected label ids \"0\"..\"1\"", "got key \"x\""},
        {"id2label ids with a gap", "{\"id2label\": {\"0\": \"a\", \"2\": \"b\"}, " REQ "}",
         "key 'id2label'", "got key \"2\"", NULL},
        {"id2label name not a string", "{\"id2label\": {\"0\": \"a\", \"1\": 7}, " REQ "}",
         "key 'id2label'", "label 1: expected a string name", "got 7"},
        {"id2label empty", "{\"id2label\": {}, " REQ "}", "key 'id2label'",
         "expected at least one label", NULL},
        {"num_labels disagrees with id2label", "{\"num_labels\": 2, \"id2label\": {\"0\": "
         "\"a\", \"1\": \"b\", \"2\": \"c\"}, " REQ "}", "key 'num_labels'",
         "expected 3 (the size of id2label)", "got 2"},
        {"num_labels zero", "{\"num_labels\": 0, " REQ "}", "key 'num_labels'",
         "expected a positive integer", "got 0"},
        {"multi-label problem", "{\"problem_type\": \"multi_label_classification\", " REQ "}",
         "key 'problem_type'", "expected null, \"regression\" or "
         "\"single_label_classification\"", "got \"multi_label_classification\""},
        {"single-label with one label", "{\"problem_type\": \"single_label_classification\", "
         "\"num_labels\": 1, " REQ "}", "key 'problem_type'",
         "expected \"regression\" or null when num_labels is 1", NULL},
        {"pruned_heads layer out of range", "{\"pruned_heads\": {\"2\": [0]}, " REQ "}",
         "key 'pruned_heads'", "expected layer indices \"0\"..\"1\"", "got \"2\""},
        {"pruned_heads head out of range", "{\"pruned_heads\": {\"0\": [4]}, " REQ "}",
         "key 'pruned_heads'", "layer 0: expected head indices in [0, 3]", "got 4"},
        {"pruned_heads duplicate head", "{\"pruned_heads\": {\"1\": [2, 2]}, " REQ "}",
         "key 'pruned_heads'", "layer 1: expected each head once", "head 2 twice"},
        {"pruned_heads not an object", "{\"pruned_heads\": [1], " REQ "}",
         "key 'pruned_heads'", "got [1]", NULL},
        {"pruned_heads value not an array", "{\"pruned_heads\": {\"0\": 1}, " REQ "}",
         "key 'pruned_heads'", "layer 0: expected an array of head indices", "got 1"},
        {"FFN widths of the wrong length", "{\"kd_hpc_intermediate_sizes\": [64], " REQ "}",
         "key 'kd_hpc_intermediate_sizes'", "expected an array of 2 FFN widths", "got [64]"},
        {"FFN width above intermediate_size", "{\"kd_hpc_intermediate_sizes\": [64, 129], "
         REQ "}", "key 'kd_hpc_intermediate_sizes'[1]",
         "expected an integer in [0, intermediate_size 128]", "got 129"},
        {"FFN width negative", "{\"kd_hpc_intermediate_sizes\": [-1, 64], " REQ "}",
         "key 'kd_hpc_intermediate_sizes'[0]", "got -1", NULL},
        {"top level array", "[1, 2]", "key '(top level)'", "expected a JSON object", NULL},
        {"not JSON", "{" MT "\"vocab_size\": 100,", "expected JSON, got invalid JSON", NULL, NULL},
    };
    struct kd_err err;
    struct bert_config c;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *p = ckpt_write_bytes(tmp, "config.json", cases[i].json, strlen(cases[i].json));
        char what[160];
        snprintf(what, sizeof what, "bad config: %s", cases[i].what);
        struct hf_labels lab = {0};
        int rc = hf_config_read(p, &c, &lab, &err);
        ok_err(rc, &err, what, p, cases[i].sub1, cases[i].sub2, cases[i].sub3, NULL);
        if (rc == 0)
            hf_labels_free(&lab);
        else if (lab.names || lab.count)
            ok(0, "  labels left allocated after an error");
        free(p);
    }
    char *missing = fs_path_join(tmp, "absent.json");
    ok_err(hf_config_read(missing, &c, NULL, &err), &err, "missing file", "absent.json",
           "cannot open", NULL);
    free(missing);
}

static int same_config(const struct bert_config *a, const struct bert_config *b)
{
    int same = a->vocab_size == b->vocab_size && a->hidden_size == b->hidden_size &&
               a->num_hidden_layers == b->num_hidden_layers &&
               a->num_attention_heads == b->num_attention_heads &&
               a->intermediate_size == b->intermediate_size &&
               a->max_position_embeddings == b->max_position_embeddings &&
               a->type_vocab_size == b->type_vocab_size && a->pad_token_id == b->pad_token_id &&
               a->layer_norm_eps == b->layer_norm_eps &&
               a->hidden_dropout_prob == b->hidden_dropout_prob &&
               a->attention_probs_dropout_prob == b->attention_probs_dropout_prob &&
               a->classifier_dropout == b->classifier_dropout &&
               a->num_labels == b->num_labels && a->problem == b->problem;
    for (int l = 0; same && l < a->num_hidden_layers; l++)
        same = a->layer_heads[l] == b->layer_heads[l] &&
               a->layer_intermediate[l] == b->layer_intermediate[l] &&
               a->layer_head_mask[l] == b->layer_head_mask[l];
    return same;
}

static void test_write(const char *tmp)
{
    struct kd_err err;
    struct bert_config c, back;
    struct hf_labels lab;
    char *p = fs_path_join(tmp, "out.json");

    /* BERT-base-like, unpruned */
    read_fixture("configs/bert_base.json", &c, NULL);
    int rc = hf_config_write(p, &c, "BertForSequenceClassification", NULL, &err);
    rc |= hf_config_read(p, &back, &lab, &err);
    ok(rc == 0 && same_config(&c, &back) && lab.count == 2 &&
       strcmp(lab.names[0], "LABEL_0") == 0, "BERT-base config round-trips");
    if (rc == 0)
        hf_labels_free(&lab);
    char *text;
    size_t len;
    fs_file_read(p, &text, &len, &err);
    cJSON *j = cJSON_Parse(text);
    const cJSON *arch = cJSON_GetObjectItemCaseSensitive(j, "architectures");
    ok(j && cJSON_GetArraySize(arch) == 1 &&
       strcmp(arch->child->valuestring, "BertForSequenceClassification") == 0 &&
       strcmp(cJSON_GetObjectItemCaseSensitive(j, "torch_dtype")->valuestring, "float32") == 0
       && strcmp(cJSON_GetObjectItemCaseSensitive(j, "transformers_version")->valuestring,
                 "4.40.2") == 0 &&
       strcmp(cJSON_GetObjectItemCaseSensitive(j, "model_type")->valuestring, "bert") == 0 &&
       cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(j, "classifier_dropout")) &&
       cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, "label2id"),
                                        "LABEL_1")->valuedouble == 1 &&
       !cJSON_GetObjectItemCaseSensitive(j, "kd_hpc_intermediate_sizes"),
       "written keys: architectures, torch_dtype, transformers_version, label2id; no FFN "
       "extension when unpruned");
    /* keys are sorted, as transformers writes them */
    int sorted = j != NULL;
    for (const cJSON *e = j ? j->child : NULL; e && e->next; e = e->next)
        sorted &= strcmp(e->string, e->next->string) < 0;
    ok(sorted, "keys are written in sorted order");
    cJSON_Delete(j);
    free(text);

    /* pruned heads, FFN widths, labels, null pad, classifier dropout */
    hf_config_defaults(&c);
    c.vocab_size = 50;
    c.hidden_size = 48;
    c.num_hidden_layers = 3;
    c.num_attention_heads = 6;
    c.intermediate_size = 96;
    c.pad_token_id = -1;
    c.classifier_dropout = 0.3;
    c.layer_norm_eps = 1e-7;
    c.num_labels = 3;
    hf_config_init_layers(&c);
    c.layer_head_mask[0] = 0x2d; /* heads 1 and 4 pruned */
    c.layer_heads[0] = 4;
    c.layer_head_mask[2] = 0;
    c.layer_heads[2] = 0;
    c.layer_intermediate[1] = 17;
    c.layer_intermediate[2] = 0;
    char *names[3] = {"a \"quoted\" label", "b", "c"};
    struct hf_labels in = {3, names, 1};
    rc = hf_config_write(p, &c, NULL, &in, &err);
    rc |= hf_config_read(p, &back, &lab, &err);
    if (!ok(rc == 0 && same_config(&c, &back) && lab.from_file &&
            strcmp(lab.names[0], names[0]) == 0,
            "pruned heads, FFN widths, labels, null pad_token_id round-trip"))
        diag("%s", err.msg);
    if (rc == 0)
        hf_labels_free(&lab);
    fs_file_read(p, &text, &len, &err);
    j = cJSON_Parse(text);
    const cJSON *ph = cJSON_GetObjectItemCaseSensitive(j, "pruned_heads");
    const cJSON *l0 = cJSON_GetObjectItemCaseSensitive(ph, "0");
    ok(cJSON_GetArraySize(ph) == 2 && cJSON_GetArraySize(l0) == 2 &&
       l0->child->valuedouble == 1 && l0->child->next->valuedouble == 4 &&
       cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(ph, "2")) == 6 &&
       cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(j, "kd_hpc_intermediate_sizes")) == 3
       && !cJSON_GetObjectItemCaseSensitive(j, "architectures"),
       "pruned_heads lists original head indices; FFN widths written when pruned");
    cJSON_Delete(j);
    free(text);

    /* regression */
    c.num_labels = 1;
    c.problem = BERT_PROBLEM_REGRESSION;
    rc = hf_config_write(p, &c, "BertForSequenceClassification", NULL, &err);
    rc |= hf_config_read(p, &back, NULL, &err);
    ok(rc == 0 && back.problem == BERT_PROBLEM_REGRESSION && back.num_labels == 1,
       "regression round-trips");

    /* refusals */
    struct bert_config bad = c;
    bad.hidden_size = 50;
    ok_err(hf_config_write(p, &bad, NULL, NULL, &err), &err, "writer refuses an invalid "
           "config", "out.json", "key 'hidden_size'", "expected a multiple", NULL);
    bad = c;
    bad.layer_heads[0] = 5;
    ok_err(hf_config_write(p, &bad, NULL, NULL, &err), &err, "writer refuses heads that "
           "disagree with the mask", "layer 0", "expected 4 heads", NULL);
    bad = c;
    bad.problem = BERT_PROBLEM_CLASSIFICATION;
    ok_err(hf_config_write(p, &bad, NULL, NULL, &err), &err, "writer refuses "
           "classification with one label", "key 'num_labels'", NULL);
    bad = c;
    bad.num_labels = 3;
    bad.problem = BERT_PROBLEM_CLASSIFICATION;
    char *dup[3] = {"x", "y", "x"};
    struct hf_labels dl = {3, dup, 1};
    ok_err(hf_config_write(p, &bad, NULL, &dl, &err), &err, "writer refuses duplicate "
           "label names", "label 2", "got \"x\" twice", NULL);
    dl.count = 2;
    ok_err(hf_config_write(p, &bad, NULL, &dl, &err), &err, "writer refuses a label count "
           "other than num_labels", "expected 3 names", NULL);

    int temps = 0;
    DIR *d = opendir(tmp);
    for (struct dirent *de; d && (de = readdir(d));)
        temps += strstr(de->d_name, ".tmp.") != NULL;
    if (d)
        closedir(d);
    ok(temps == 0, "no temporary file left behind");
    free(p);
}

int main(void)
{
    log_init(0, 1);
    log_set_timestamps(0);
    char *tmp = ckpt_tmpdir();
    test_good_files();
    test_defaults();
    test_bad_values(tmp);
    test_write(tmp);
    ckpt_rmtree(tmp);
    free(tmp);
    return done_testing();
}
