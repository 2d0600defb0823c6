/* hf_config.c: config.json <-> struct bert_config (model layer; no MPI).
 * Key list, defaults and error forms: see hf_config.h. Defaults follow
 * transformers 4.40 BertConfig.__init__ and PretrainedConfig (num_labels). */
#include "kd/model/hf_config.h"

#include "kd/core/fsutil.h"
#include "kd/core/log.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Version written into config.json; the one we test against. */
#define HF_TRANSFORMERS_VERSION "4.40.2"
/* Upper bound for any size key: rejects absurd values before allocation. */
#define HF_MAX_SIZE ((int64_t)1 << 40)

void hf_labels_free(struct hf_labels *labels)
{
    if (!labels)
        return;
    for (int64_t i = 0; i < labels->count && labels->names; i++)
        free(labels->names[i]);
    free(labels->names);
    memset(labels, 0, sizeof *labels);
}

/* Values of transformers 4.40 BertConfig.__init__ (configuration_bert.py)
 * and PretrainedConfig (num_labels = 2 when neither num_labels nor
 * id2label is given). */
void hf_config_defaults(struct bert_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->max_position_embeddings = 512;
    cfg->type_vocab_size = 2;
    cfg->pad_token_id = 0;
    cfg->layer_norm_eps = 1e-12;
    cfg->hidden_dropout_prob = 0.1;
    cfg->attention_probs_dropout_prob = 0.1;
    cfg->classifier_dropout = -1.0;
    cfg->num_labels = 2;
    cfg->problem = BERT_PROBLEM_CLASSIFICATION;
}

/* Mask with the low nh bits set: every head of a layer kept. */
static uint64_t all_heads_mask(int64_t nh)
{
    return nh >= 64 ? ~(uint64_t)0 : nh <= 0 ? 0 : (((uint64_t)1 << nh) - 1);
}

void hf_config_init_layers(struct bert_config *cfg)
{
    for (int l = 0; l < BERT_MAX_LAYERS; l++) {
        cfg->layer_heads[l] = cfg->num_attention_heads;
        cfg->layer_intermediate[l] = cfg->intermediate_size;
        cfg->layer_head_mask[l] = all_heads_mask(cfg->num_attention_heads);
    }
}

/* Kept heads of a mask (Kernighan's loop; masks have at most 64 bits). */
static int popcount64(uint64_t x)
{
    int n = 0;
    for (; x; x &= x - 1)
        n++;
    return n;
}

/* Shared by the reader (after parsing, as a last line of defence) and the
 * writer (a config built in code must be as valid as one read from disk).
 * Messages name config.json keys, since that is what a user can fix. */
int hf_config_validate(const struct bert_config *c, const char *what, struct kd_err *err)
{
    const struct {
        const char *key;
        int64_t v;
    } sizes[] = {
        {"vocab_size", c->vocab_size},
        {"hidden_size", c->hidden_size},
        {"num_hidden_layers", c->num_hidden_layers},
        {"num_attention_heads", c->num_attention_heads},
        {"intermediate_size", c->intermediate_size},
        {"max_position_embeddings", c->max_position_embeddings},
        {"type_vocab_size", c->type_vocab_size},
        {"num_labels", c->num_labels},
    };
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        if (sizes[i].v < 1 || sizes[i].v > HF_MAX_SIZE)
            return kd_errf(err, "%s: key '%s': expected a positive integer <= 2^40, got %"
                           PRId64, what, sizes[i].key, sizes[i].v);
    if (c->num_hidden_layers > BERT_MAX_LAYERS)
        return kd_errf(err, "%s: key 'num_hidden_layers': expected at most %d, got %" PRId64,
                       what, BERT_MAX_LAYERS, c->num_hidden_layers);
    if (c->num_attention_heads > HF_CONFIG_MAX_HEADS)
        return kd_errf(err, "%s: key 'num_attention_heads': expected at most %d, got %"
                       PRId64, what, HF_CONFIG_MAX_HEADS, c->num_attention_heads);
    if (c->hidden_size % c->num_attention_heads != 0)
        return kd_errf(err, "%s: key 'hidden_size': expected a multiple of "
                       "num_attention_heads (%" PRId64 "), got %" PRId64, what,
                       c->num_attention_heads, c->hidden_size);
    if (c->pad_token_id < -1 || c->pad_token_id >= c->vocab_size)
        return kd_errf(err, "%s: key 'pad_token_id': expected a token id in [0, vocab_size "
                       "%" PRId64 ") or null, got %" PRId64, what, c->vocab_size,
                       c->pad_token_id);
    if (!(c->layer_norm_eps > 0) || !isfinite(c->layer_norm_eps))
        return kd_errf(err, "%s: key 'layer_norm_eps': expected a positive number, got %g",
                       what, c->layer_norm_eps);
    const struct {
        const char *key;
        double v;
    } probs[] = {
        {"hidden_dropout_prob", c->hidden_dropout_prob},
        {"attention_probs_dropout_prob", c->attention_probs_dropout_prob},
    };
    for (size_t i = 0; i < 2; i++)
        if (!(probs[i].v >= 0 && probs[i].v < 1))
            return kd_errf(err, "%s: key '%s': expected a probability in [0, 1), got %g",
                           what, probs[i].key, probs[i].v);
    if (!(c->classifier_dropout < 1) || !isfinite(c->classifier_dropout))
        return kd_errf(err, "%s: key 'classifier_dropout': expected null or a probability "
                       "in [0, 1), got %g", what, c->classifier_dropout);
    if (c->problem != BERT_PROBLEM_CLASSIFICATION && c->problem != BERT_PROBLEM_REGRESSION)
        return kd_errf(err, "%s: problem type: expected classification or regression, got "
                       "%d", what, (int)c->problem);
    if (c->num_labels == 1 && c->problem != BERT_PROBLEM_REGRESSION)
        return kd_errf(err, "%s: key 'num_labels': expected at least 2 for classification "
                       "(1 label means regression), got 1", what);
    /* per layer: the mask names heads that exist, layer_heads counts them,
     * and the FFN width is within the unpruned one */
    uint64_t full = all_heads_mask(c->num_attention_heads);
    for (int64_t l = 0; l < c->num_hidden_layers; l++) {
        if (c->layer_head_mask[l] & ~full)
            return kd_errf(err, "%s: layer %" PRId64 ": head mask 0x%" PRIx64 ": expected "
                           "only heads 0..%" PRId64 ", got more", what, l,
                           c->layer_head_mask[l], c->num_attention_heads - 1);
        if (popcount64(c->layer_head_mask[l]) != c->layer_heads[l])
            return kd_errf(err, "%s: layer %" PRId64 ": expected %d heads (the kept heads "
                           "of its mask), got layer_heads %" PRId64, what, l,
                           popcount64(c->layer_head_mask[l]), c->layer_heads[l]);
        if (c->layer_intermediate[l] < 0 || c->layer_intermediate[l] > c->intermediate_size)
            return kd_errf(err, "%s: key 'kd_hpc_intermediate_sizes'[%" PRId64 "]: expected "
                           "an FFN width in [0, intermediate_size %" PRId64 "], got %" PRId64,
                           what, l, c->intermediate_size, c->layer_intermediate[l]);
    }
    return 0;
}

/* ---- reading ------------------------------------------------------------- */

/* Short printable form of a JSON value for "got ..." in messages. */
static void describe(const cJSON *v, char *out, size_t cap)
{
    char *s = v ? cJSON_PrintUnformatted(v) : NULL;
    if (!s) {
        snprintf(out, cap, "%s", v ? "(unprintable)" : "nothing (key absent)");
        return;
    }
    if (strlen(s) > 60)
        snprintf(out, cap, "%.57s...", s);
    else
        snprintf(out, cap, "%s", s);
    cJSON_free(s);
}

/* Context shared by the key readers: the file name for messages, the
 * parsed document and where errors go. Every reader leaves the destination
 * untouched when its key is absent, so defaults set beforehand survive. */
struct rd {
    const char *path;
    const cJSON *root;
    struct kd_err *err;
};

/* The one message form for a bad key: "<file>: key '<k>': expected <what>,
 * got <JSON of the value>". Returns -1. */
static int bad_value(const struct rd *rd, const char *key, const char *expected,
                     const cJSON *got)
{
    char g[96];
    describe(got, g, sizeof g);
    return kd_errf(rd->err, "%s: key '%s': expected %s, got %s", rd->path, key, expected, g);
}

/* A JSON number that is an integer in [lo, hi] (bounds well inside 2^53,
 * where doubles are exact). true/false and "12" are not numbers. */
static int json_is_int(const cJSON *v, int64_t lo, int64_t hi, int64_t *out)
{
    if (!cJSON_IsNumber(v))
        return 0;
    double d = v->valuedouble;
    if (!isfinite(d) || d != floor(d) || d < (double)lo || d > (double)hi)
        return 0;
    *out = (int64_t)d;
    return 1;
}

/* An integer key in [lo, hi]; absent keys keep *out unless required. The
 * expected text says "(required key)" when a required key is missing, and
 * the bound when it is out of range, so the message tells what to change. */
static int get_int(const struct rd *rd, const char *key, int required, int64_t lo, int64_t hi,
                   int64_t *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(rd->root, key);
    if (!v && !required)
        return 0;
    if (!json_is_int(v, lo, hi, out)) {
        char expected[96];
        if (lo == 1 && hi == HF_MAX_SIZE)
            snprintf(expected, sizeof expected, "a positive integer%s",
                     v ? " <= 2^40" : " (required key)");
        else
            snprintf(expected, sizeof expected, "an integer in [%" PRId64 ", %" PRId64 "]",
                     lo, hi);
        return bad_value(rd, key, expected, v);
    }
    return 0;
}

/* A number key in [lo, hi), or (lo, hi) with lo_open; absent keys keep
 * *out. NaN and infinities never pass (JSON has no spelling for them, but
 * 1e400 parses to infinity). */
static int get_num(const struct rd *rd, const char *key, double lo, double hi, int lo_open,
                   double *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(rd->root, key);
    if (!v)
        return 0;
    double d = cJSON_IsNumber(v) ? v->valuedouble : NAN;
    if (!isfinite(d) || (lo_open ? d <= lo : d < lo) || d >= hi) {
        char expected[96];
        snprintf(expected, sizeof expected, "a number in %s%g, %g)", lo_open ? "(" : "[", lo,
                 hi);
        return bad_value(rd, key, expected, v);
    }
    *out = d;
    return 0;
}

/* A string key that must equal `only` when present (hidden_act,
 * position_embedding_type): one accepted value, with the reason in the
 * message, instead of silently computing something else than the file
 * describes. */
static int get_only_string(const struct rd *rd, const char *key, const char *only,
                           const char *why)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(rd->root, key);
    if (!v || (cJSON_IsString(v) && strcmp(v->valuestring, only) == 0))
        return 0;
    char expected[160];
    snprintf(expected, sizeof expected, "\"%s\" (%s)", only, why);
    return bad_value(rd, key, expected, v);
}

/* id2label: {"0": "neg", "1": "pos"} with keys exactly 0..K-1 (JSON
 * object keys are strings; transformers converts them with int()). K
 * distinct ids in [0, K) cover every id, so no separate gap check is
 * needed: a gap shows up as an id >= K. label2id is not read: it is the
 * inverse map and transformers itself only uses it for display. */
static int read_id2label(const struct rd *rd, const cJSON *v, struct hf_labels *lab)
{
    if (!cJSON_IsObject(v))
        return bad_value(rd, "id2label", "an object {\"0\": name, ...}", v);
    int64_t k = cJSON_GetArraySize(v);
    if (k < 1)
        return bad_value(rd, "id2label", "at least one label", v);
    lab->count = k;
    lab->names = kd_calloc((size_t)k, sizeof *lab->names);
    lab->from_file = 1;
    for (const cJSON *e = v->child; e; e = e->next) {
        char *end = NULL;
        long long id = strtoll(e->string, &end, 10);
        if (!*e->string || *end || id < 0 || id >= k) {
            char expected[96];
            snprintf(expected, sizeof expected, "label ids \"0\"..\"%" PRId64 "\"", k - 1);
            return kd_errf(rd->err, "%s: key 'id2label': expected %s, got key \"%.40s\"",
                           rd->path, expected, e->string);
        }
        if (!cJSON_IsString(e)) {
            char g[96];
            describe(e, g, sizeof g);
            return kd_errf(rd->err, "%s: key 'id2label': label %lld: expected a string "
                           "name, got %s", rd->path, id, g);
        }
        if (lab->names[id])
            return kd_errf(rd->err, "%s: key 'id2label': label %lld: expected once, got it "
                           "twice", rd->path, id);
        lab->names[id] = kd_strdup(e->valuestring);
    }
    return 0;
}

/* pruned_heads: {"<layer>": [head, ...]}. Head indices are in the original
 * numbering: transformers' BertAttention.prune_heads maps later prunings
 * back through the already-pruned set before recording them, and
 * BertModel.__init__ re-applies this dict to a full-size model before the
 * weights are loaded. So a layer's kept heads are the complement of its
 * list, and the tensors in the file have layer_heads * HS rows. */
static int read_pruned_heads(const struct rd *rd, const cJSON *v, struct bert_config *c)
{
    if (!v || cJSON_IsNull(v))
        return 0;
    if (!cJSON_IsObject(v))
        return bad_value(rd, "pruned_heads", "an object {\"<layer>\": [heads]}", v);
    for (const cJSON *e = v->child; e; e = e->next) {
        char *end = NULL;
        long long l = strtoll(e->string, &end, 10);
        if (!*e->string || *end || l < 0 || l >= c->num_hidden_layers)
            return kd_errf(rd->err, "%s: key 'pruned_heads': expected layer indices \"0\"..\""
                           "%" PRId64 "\", got \"%.40s\"", rd->path,
                           c->num_hidden_layers - 1, e->string);
        if (!cJSON_IsArray(e)) {
            char g[96];
            describe(e, g, sizeof g);
            return kd_errf(rd->err, "%s: key 'pruned_heads': layer %lld: expected an array "
                           "of head indices, got %s", rd->path, l, g);
        }
        for (const cJSON *h = e->child; h; h = h->next) {
            int64_t head;
            if (!json_is_int(h, 0, c->num_attention_heads - 1, &head)) {
                char g[96];
                describe(h, g, sizeof g);
                return kd_errf(rd->err, "%s: key 'pruned_heads': layer %lld: expected head "
                               "indices in [0, %" PRId64 "], got %s", rd->path, l,
                               c->num_attention_heads - 1, g);
            }
            uint64_t bit = (uint64_t)1 << head;
            if (!(c->layer_head_mask[l] & bit))
                return kd_errf(rd->err, "%s: key 'pruned_heads': layer %lld: expected each "
                               "head once, got head %" PRId64 " twice", rd->path, l, head);
            c->layer_head_mask[l] &= ~bit;
            c->layer_heads[l]--;
        }
    }
    return 0;
}

/* kd_hpc_intermediate_sizes: [F_0, ..., F_{L-1}], our extension for
 * FFN-pruned models (widths may be 0: the layer's FFN is skipped). */
static int read_intermediate_sizes(const struct rd *rd, const cJSON *v, struct bert_config *c)
{
    const char *key = "kd_hpc_intermediate_sizes";
    if (!v || cJSON_IsNull(v))
        return 0;
    if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) != c->num_hidden_layers) {
        char expected[96];
        snprintf(expected, sizeof expected, "an array of %" PRId64
                 " FFN widths (one per layer)", c->num_hidden_layers);
        return bad_value(rd, key, expected, v);
    }
    int l = 0;
    for (const cJSON *e = v->child; e; e = e->next, l++)
        if (!json_is_int(e, 0, c->intermediate_size, &c->layer_intermediate[l])) {
            char g[96];
            describe(e, g, sizeof g);
            return kd_errf(rd->err, "%s: key '%s'[%d]: expected an integer in [0, "
                           "intermediate_size %" PRId64 "], got %s", rd->path, key, l,
                           c->intermediate_size, g);
        }
    return 0;
}

/* Reads every key we know, in dependency order: required sizes, then keys
 * whose range depends on them (pad_token_id < vocab_size, head indices <
 * num_attention_heads, one FFN width per layer), then labels and problem
 * type, then per-layer pruning. Ends with hf_config_validate. */
static int parse_root(const struct rd *rd, struct bert_config *c, struct hf_labels *lab)
{
    const cJSON *root = rd->root;
    const cJSON *mt = cJSON_GetObjectItemCaseSensitive(root, "model_type");
    if (!mt)
        log_warn("%s: key 'model_type' absent; assuming \"bert\"", rd->path);
    else if (!cJSON_IsString(mt) || strcmp(mt->valuestring, "bert") != 0)
        return bad_value(rd, "model_type", "\"bert\"", mt);

    /* required sizes first: later checks refer to them */
    if (get_int(rd, "vocab_size", 1, 1, HF_MAX_SIZE, &c->vocab_size) ||
        get_int(rd, "hidden_size", 1, 1, HF_MAX_SIZE, &c->hidden_size) ||
        get_int(rd, "num_hidden_layers", 1, 1, BERT_MAX_LAYERS, &c->num_hidden_layers) ||
        get_int(rd, "num_attention_heads", 1, 1, HF_CONFIG_MAX_HEADS,
                &c->num_attention_heads) ||
        get_int(rd, "intermediate_size", 1, 1, HF_MAX_SIZE, &c->intermediate_size))
        return -1;
    if (c->hidden_size % c->num_attention_heads != 0) {
        return kd_errf(rd->err, "%s: key 'hidden_size': expected a multiple of "
                       "num_attention_heads (%" PRId64 "), got %" PRId64, rd->path,
                       c->num_attention_heads, c->hidden_size);
    }
    if (get_int(rd, "max_position_embeddings", 0, 1, HF_MAX_SIZE,
                &c->max_position_embeddings) ||
        get_int(rd, "type_vocab_size", 0, 1, HF_MAX_SIZE, &c->type_vocab_size) ||
        get_num(rd, "layer_norm_eps", 0, 1, 1, &c->layer_norm_eps) ||
        get_num(rd, "hidden_dropout_prob", 0, 1, 0, &c->hidden_dropout_prob) ||
        get_num(rd, "attention_probs_dropout_prob", 0, 1, 0,
                &c->attention_probs_dropout_prob))
        return -1;

    /* null is legal in transformers (nn.Embedding without padding_idx, so
     * no row is exempt from gradient updates); stored as -1 */
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, "pad_token_id");
    if (cJSON_IsNull(v))
        c->pad_token_id = -1;
    else if (get_int(rd, "pad_token_id", 0, 0, c->vocab_size - 1, &c->pad_token_id))
        return -1;

    v = cJSON_GetObjectItemCaseSensitive(root, "classifier_dropout");
    if (v && !cJSON_IsNull(v) && get_num(rd, "classifier_dropout", 0, 1, 0,
                                         &c->classifier_dropout))
        return -1;

    if (get_only_string(rd, "hidden_act", "gelu",
                        "exact erf GELU is the only activation implemented") ||
        get_only_string(rd, "position_embedding_type", "absolute",
                        "the only position embedding implemented"))
        return -1;

    /* labels: num_labels, else size of id2label, else 2 */
    v = cJSON_GetObjectItemCaseSensitive(root, "id2label");
    if (v && !cJSON_IsNull(v) && read_id2label(rd, v, lab) != 0)
        return -1;
    const cJSON *nl = cJSON_GetObjectItemCaseSensitive(root, "num_labels");
    if (nl) {
        if (get_int(rd, "num_labels", 1, 1, HF_MAX_SIZE, &c->num_labels))
            return -1;
        if (lab->count && lab->count != c->num_labels)
            return kd_errf(rd->err, "%s: key 'num_labels': expected %" PRId64 " (the size "
                           "of id2label), got %" PRId64, rd->path, lab->count,
                           c->num_labels);
    } else if (lab->count) {
        c->num_labels = lab->count;
    }

    /* transformers picks MSE when num_labels == 1 and problem_type is unset
     * (BertForSequenceClassification.forward); an explicit "regression"
     * also holds for several outputs */
    const cJSON *pt = cJSON_GetObjectItemCaseSensitive(root, "problem_type");
    c->problem = c->num_labels == 1 ? BERT_PROBLEM_REGRESSION : BERT_PROBLEM_CLASSIFICATION;
    if (pt && !cJSON_IsNull(pt)) {
        if (cJSON_IsString(pt) && strcmp(pt->valuestring, "regression") == 0)
            c->problem = BERT_PROBLEM_REGRESSION;
        else if (cJSON_IsString(pt) &&
                 strcmp(pt->valuestring, "single_label_classification") == 0) {
            if (c->num_labels == 1)
                return bad_value(rd, "problem_type", "\"regression\" or null when "
                                 "num_labels is 1", pt);
        } else {
            return bad_value(rd, "problem_type", "null, \"regression\" or "
                             "\"single_label_classification\"", pt);
        }
    }

    hf_config_init_layers(c);
    if (read_pruned_heads(rd, cJSON_GetObjectItemCaseSensitive(root, "pruned_heads"), c) ||
        read_intermediate_sizes(rd, cJSON_GetObjectItemCaseSensitive(
                                        root, "kd_hpc_intermediate_sizes"), c))
        return -1;
    return hf_config_validate(c, rd->path, rd->err);
}

/* Parses into cfg from hf_config_defaults, then fills label names: from
 * id2label where the file has it, LABEL_i otherwise (what transformers
 * generates). On error labels is freed, so callers free only on success. */
int hf_config_parse(const char *text, size_t len, const char *path, struct bert_config *cfg,
                    struct hf_labels *labels, struct kd_err *err)
{
    struct hf_labels local = {0};
    struct hf_labels *lab = labels ? labels : &local;
    memset(lab, 0, sizeof *lab);
    hf_config_defaults(cfg);
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (!root) {
        size_t at = end && end >= text && end <= text + len ? (size_t)(end - text) : 0;
        return kd_errf(err, "%s: expected JSON, got invalid JSON near byte %zu", path, at);
    }
    struct rd rd = {path, root, err};
    int rc;
    if (!cJSON_IsObject(root))
        rc = bad_value(&rd, "(top level)", "a JSON object", root);
    else
        rc = parse_root(&rd, cfg, lab);
    cJSON_Delete(root);
    if (rc == 0 && lab->count == 0) {
        /* no id2label in the file: transformers' generated names */
        lab->count = cfg->num_labels;
        lab->names = kd_calloc((size_t)lab->count, sizeof *lab->names);
        lab->from_file = 0;
    }
    for (int64_t i = 0; rc == 0 && i < lab->count; i++)
        if (!lab->names[i]) {
            char name[32];
            snprintf(name, sizeof name, "LABEL_%" PRId64, i);
            lab->names[i] = kd_strdup(name);
        }
    if (rc != 0 || !labels)
        hf_labels_free(lab);
    return rc;
}

int hf_config_read(const char *path, struct bert_config *cfg, struct hf_labels *labels,
                   struct kd_err *err)
{
    char *text;
    size_t len;
    if (labels)
        memset(labels, 0, sizeof *labels);
    if (fs_file_read(path, &text, &len, err) != 0)
        return -1;
    int rc = hf_config_parse(text, len, path, cfg, labels, err);
    free(text);
    return rc;
}

/* ---- writing ----------------------------------------------------------- */

/* Re-indents compact JSON the way Python's json.dumps(indent=2) does (what
 * transformers writes): two spaces per level, ": " after keys, one item per
 * line, empty {} and [] kept on one line, a final newline. */
static char *json_indent(const char *in)
{
    size_t n = strlen(in), cap = 2 * n + 64, o = 0;
    int depth = 0, in_str = 0;
    char *out = kd_malloc(cap);
#define PUT(c)                                                                \
    do {                                                                      \
        if (o + 1 >= cap)                                                     \
            out = kd_realloc(out, cap *= 2);                                  \
        out[o++] = (c);                                                       \
    } while (0)
#define NEWLINE()                                                             \
    do {                                                                      \
        PUT('\n');                                                            \
        for (int k_ = 0; k_ < 2 * depth; k_++)                                \
            PUT(' ');                                                         \
    } while (0)
    for (size_t i = 0; i < n; i++) {
        char c = in[i];
        if (in_str) {
            PUT(c);
            if (c == '\\' && i + 1 < n)
                PUT(in[++i]);
            else if (c == '"')
                in_str = 0;
            continue;
        }
        switch (c) {
        case '"':
            in_str = 1;
            PUT(c);
            break;
        case '{':
        case '[':
            PUT(c);
            if (in[i + 1] == (c == '{' ? '}' : ']')) {
                PUT(in[++i]);
                break;
            }
            depth++;
            NEWLINE();
            break;
        case '}':
        case ']':
            depth--;
            NEWLINE();
            PUT(c);
            break;
        case ',':
            PUT(c);
            NEWLINE();
            break;
        case ':':
            PUT(c);
            PUT(' ');
            break;
        default:
            PUT(c);
        }
    }
    PUT('\n');
    out[o] = '\0';
#undef PUT
#undef NEWLINE
    return out;
}

/* Builds the document with cJSON (which escapes label names and prints
 * doubles with the shortest exact form up to 17 digits), keys added in
 * sorted order, then indents it as transformers does. */
char *hf_config_to_json(const struct bert_config *c, const char *architecture,
                        const struct hf_labels *labels, struct kd_err *err)
{
    if (hf_config_validate(c, "config to write", err) != 0)
        return NULL;
    if (labels && labels->count != c->num_labels) {
        kd_errf(err, "config to write: id2label: expected %" PRId64 " names (num_labels), "
                "got %" PRId64, c->num_labels, labels->count);
        return NULL;
    }
    cJSON *root = cJSON_CreateObject();
    cJSON *id2label = cJSON_CreateObject(), *label2id = cJSON_CreateObject();
    char key[32];
    for (int64_t i = 0; i < c->num_labels; i++) {
        char gen[32];
        snprintf(key, sizeof key, "%" PRId64, i);
        snprintf(gen, sizeof gen, "LABEL_%" PRId64, i);
        const char *name = labels && labels->names && labels->names[i] ? labels->names[i]
                                                                       : gen;
        if (cJSON_GetObjectItemCaseSensitive(label2id, name)) {
            kd_errf(err, "config to write: id2label: label %" PRId64 ": expected a unique "
                    "name, got \"%s\" twice", i, name);
            cJSON_Delete(id2label);
            cJSON_Delete(label2id);
            cJSON_Delete(root);
            return NULL;
        }
        cJSON_AddStringToObject(id2label, key, name);
        cJSON_AddNumberToObject(label2id, name, (double)i);
    }
    /* pruned heads in original numbering, only layers that lost some;
     * an unpruned model gets "pruned_heads": {} as transformers writes */
    cJSON *pruned = cJSON_CreateObject();
    uint64_t full = all_heads_mask(c->num_attention_heads);
    int ffn_pruned = 0;
    for (int64_t l = 0; l < c->num_hidden_layers; l++) {
        if (c->layer_intermediate[l] != c->intermediate_size)
            ffn_pruned = 1;
        if (c->layer_head_mask[l] == full)
            continue;
        cJSON *heads = cJSON_CreateArray();
        for (int64_t h = 0; h < c->num_attention_heads; h++)
            if (!(c->layer_head_mask[l] & ((uint64_t)1 << h)))
                cJSON_AddItemToArray(heads, cJSON_CreateNumber((double)h));
        snprintf(key, sizeof key, "%" PRId64, l);
        cJSON_AddItemToObject(pruned, key, heads);
    }

    /* keys in sorted order, as transformers' to_json_string(sort_keys).
     * initializer_range is not part of bert_config; 0.02 is BertConfig's
     * default and only matters to code that re-initialises weights.
     * problem_type is written explicitly so the file means the same to
     * transformers whatever num_labels is. */
    if (architecture) {
        cJSON *arch = cJSON_AddArrayToObject(root, "architectures");
        cJSON_AddItemToArray(arch, cJSON_CreateString(architecture));
    }
    cJSON_AddNumberToObject(root, "attention_probs_dropout_prob",
                            c->attention_probs_dropout_prob);
    if (c->classifier_dropout < 0)
        cJSON_AddNullToObject(root, "classifier_dropout");
    else
        cJSON_AddNumberToObject(root, "classifier_dropout", c->classifier_dropout);
    cJSON_AddStringToObject(root, "hidden_act", "gelu");
    cJSON_AddNumberToObject(root, "hidden_dropout_prob", c->hidden_dropout_prob);
    cJSON_AddNumberToObject(root, "hidden_size", (double)c->hidden_size);
    cJSON_AddItemToObject(root, "id2label", id2label);
    cJSON_AddNumberToObject(root, "initializer_range", 0.02);
    cJSON_AddNumberToObject(root, "intermediate_size", (double)c->intermediate_size);
    if (ffn_pruned) {
        cJSON *sizes = cJSON_AddArrayToObject(root, "kd_hpc_intermediate_sizes");
        for (int64_t l = 0; l < c->num_hidden_layers; l++)
            cJSON_AddItemToArray(sizes, cJSON_CreateNumber((double)c->layer_intermediate[l]));
    }
    cJSON_AddItemToObject(root, "label2id", label2id);
    cJSON_AddNumberToObject(root, "layer_norm_eps", c->layer_norm_eps);
    cJSON_AddNumberToObject(root, "max_position_embeddings",
                            (double)c->max_position_embeddings);
    cJSON_AddStringToObject(root, "model_type", "bert");
    cJSON_AddNumberToObject(root, "num_attention_heads", (double)c->num_attention_heads);
    cJSON_AddNumberToObject(root, "num_hidden_layers", (double)c->num_hidden_layers);
    if (c->pad_token_id < 0)
        cJSON_AddNullToObject(root, "pad_token_id");
    else
        cJSON_AddNumberToObject(root, "pad_token_id", (double)c->pad_token_id);
    cJSON_AddStringToObject(root, "position_embedding_type", "absolute");
    if (c->problem == BERT_PROBLEM_REGRESSION)
        cJSON_AddStringToObject(root, "problem_type", "regression");
    else if (c->num_labels > 1)
        cJSON_AddStringToObject(root, "problem_type", "single_label_classification");
    cJSON_AddItemToObject(root, "pruned_heads", pruned);
    cJSON_AddStringToObject(root, "torch_dtype", "float32");
    cJSON_AddStringToObject(root, "transformers_version", HF_TRANSFORMERS_VERSION);
    cJSON_AddNumberToObject(root, "type_vocab_size", (double)c->type_vocab_size);
    cJSON_AddTrueToObject(root, "use_cache");
    cJSON_AddNumberToObject(root, "vocab_size", (double)c->vocab_size);

    char *s = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (!s) {
        kd_errf(err, "config to write: cJSON could not print the document");
        return NULL;
    }
    char *out = json_indent(s);
    cJSON_free(s);
    return out;
}

int hf_config_write(const char *path, const struct bert_config *cfg,
                    const char *architecture, const struct hf_labels *labels,
                    struct kd_err *err)
{
    char *text = hf_config_to_json(cfg, architecture, labels, err);
    if (!text)
        return kd_err_prefix(err, "%s", path);
    int rc = fs_file_write_atomic(path, text, strlen(text), err);
    free(text);
    return rc;
}
