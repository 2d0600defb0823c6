/* synthetic.c: the embedded synthetic task: grammar tables, vocabulary and
 * the generator (io layer; no MPI, no tokenizer). The grammar and the
 * labelling rule are documented in include/kd/io/synthetic.h; the tables
 * below are the only place the words live, and the vocabulary is derived
 * from them, so adding a word cannot produce an [UNK].
 *
 * Randomness is counter-based (core/rng.h): draw k of example i of a split is
 * rng_bits_at(seed, stream(kind, split), i * SYNTH_DRAWS + k), so an example
 * is a pure function of its index and any subset can be regenerated alone.
 */
#include "kd/io/synthetic.h"
#include "kd/core/atomic_file.h"
#include "kd/core/rng.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define COUNT(a) ((uint32_t)(sizeof(a) / sizeof((a)[0])))

/* ---- grammar tables --------------------------------------------------------- */

/* A verb with its plain form and two negated forms. */
struct verb {
    const char *plain;
    const char *negated[2];
};

/* Copulas before an adjective: "was good", "did not seem good". */
static const struct verb adj_verbs[] = {
    {"was", {"was not", "was never"}},
    {"is", {"is not", "is never"}},
    {"seemed", {"did not seem", "never seemed"}},
    {"felt", {"did not feel", "never felt"}},
    {"looked", {"did not look", "never looked"}},
    {"became", {"did not become", "never became"}},
};
/* Before "a" + noun: "was a mess", "did not feel like a triumph". At most
 * four words, which bounds the sentence length (see SYNTHETIC_MAX_TOKENS). */
static const struct verb noun_verbs[] = {
    {"was", {"was not", "was never"}},
    {"is", {"is not", "is never"}},
    {"seemed like", {"did not seem like", "never seemed like"}},
    {"felt like", {"did not feel like", "never felt like"}},
};
/* Frames around a simple sentence: the first three keep the polarity, the
 * last three (each with one "not" or "no") flip it. */
static const char *const frames[] = {
    "i think that", "it is true that", "everyone says that",
    "i do not think that", "it is not true that", "no one would say that",
};
#define FRAMES_NEGATING_FROM 3

static const char *const determiners[] = {"the", "this"};
static const char *const modifiers[] = {"new", "long", "short", "recent",
                                        "second", "latest", "animated", "french"};
static const char *const nouns[] = {"movie", "film", "plot", "story", "acting",
                                    "cast", "script", "music", "ending", "dialogue",
                                    "director", "soundtrack"};
static const char *const adj_intensifiers[] = {"very", "really", "truly", "quite",
                                               "so", "extremely", "incredibly", "fairly"};
static const char *const noun_intensifiers[] = {"real", "total", "complete", "true",
                                                "genuine"};
static const char *const positive_adjs[] = {"good", "great", "wonderful", "brilliant",
                                            "charming", "clever", "delightful", "enjoyable",
                                            "excellent", "fun", "moving", "superb"};
static const char *const negative_adjs[] = {"bad", "awful", "boring", "dull",
                                            "terrible", "weak", "clumsy", "tedious",
                                            "poor", "bland", "messy", "painful"};
static const char *const positive_nouns[] = {"triumph", "delight", "masterpiece", "joy",
                                             "gem", "success"};
static const char *const negative_nouns[] = {"disaster", "mess", "failure", "bore",
                                             "letdown", "chore"};
/* A sentiment word is (table, index), drawn before its polarity is known. */
_Static_assert(COUNT(positive_adjs) == COUNT(negative_adjs), "adjective tables differ");
_Static_assert(COUNT(positive_nouns) == COUNT(negative_nouns), "noun tables differ");
static const char *const openers[] = {"frankly", "honestly", "well"};
static const char *const tails[] = {"at times", "to me", "this year", "so far",
                                    "on screen", "again"};
/* Contrasts of the single task; kind decides which clause wins. */
enum contrast_kind { CONTRAST_AFTER, CONTRAST_FRONT, CONTRAST_BACK };
static const struct {
    const char *word;
    int kind;
} contrasts[] = {
    {"but", CONTRAST_AFTER},     {"yet", CONTRAST_AFTER},
    {"although", CONTRAST_FRONT}, {"though", CONTRAST_FRONT},
    {"although", CONTRAST_BACK},  {"though", CONTRAST_BACK},
};
static const char *const verdicts[] = {"overall", "altogether"};
/* Words only the pair task uses. "and" (an earlier premise form) stays so
 * that vocab.txt, and with it every token id, is unchanged. */
static const char *const pair_words[] = {"and", "it"};

/* Length bound (SYNTHETIC_MAX_TOKENS): a clause is at most 12 words (the,
 * modifier, noun, "did not feel like", a, intensifier, noun, two-word tail)
 * after at most two frames of at most 5 words. A single sentence longer than
 * SYNTHETIC_MAX_TOKENS - 2 words is built again from the same draws without
 * its fillers (opener, modifier, intensifiers, tails: the words that never
 * matter), which leaves at most "although" 1 + frame 5 + clause 8 + "," 1 +
 * 5 + 8 + "." 1 = 29 words + [CLS] [SEP] = 31; a simple sentence is at most
 * 2 + 5 + 5 + 12 + 1 = 25 words anyway. A pair whose premise and
 * hypothesis would exceed SYNTHETIC_MAX_TOKENS - 3 words is rebuilt the
 * same way: without fillers a premise is at most 5 + 5 + 8 = 18 words
 * (two frames on a simple clause; contrast clauses get no frame, 1 + 8 +
 * 1 + 8 = 18) and a hypothesis 2 + 6 = 8, so 18 + 8 + 3 specials = 29. */

/* Probabilities of the optional parts (single task unless noted). */
#define P_CONTRAST 0.35  /* a contrast instead of a simple clause */
#define P_FRAME 0.30     /* a frame around a simple clause */
#define P_FRAME2 0.30    /* a second, different frame after the first one */
#define P_CLAUSE_FRAME 0.30 /* a frame before each clause of a contrast */
#define P_NEGATED 0.30   /* a clause uses the negated verb form */
#define P_NOUN 0.30      /* "a NOUN" instead of an adjective */
#define P_INTENSIFIER 0.40
#define P_MODIFIER 0.30
#define P_TAIL 0.25
#define P_OPENER 0.15
#define P_PAIR_CONTRAST 0.35 /* pair: a contrast premise */
#define P_HYP_PLAIN 0.60 /* pair: a plainly positive verdict */
#define P_ECHO 0.50      /* pair: the hypothesis repeats a premise clause's word */

/* ---- vocabulary ------------------------------------------------------------- */

#define VOCAB_MAX 256
#define VOCAB_POOL 4096

static struct {
    int built;
    int32_t n;
    const char *tokens[VOCAB_MAX];
    char pool[VOCAB_POOL];
    size_t used;
} vocab;

/* Adds each space-separated word of phrase that is not there yet. */
static void vocab_add_phrase(const char *phrase)
{
    const char *p = phrase;
    while (*p) {
        const char *e = strchr(p, ' ');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        int found = 0;
        for (int32_t i = 0; i < vocab.n && !found; i++)
            found = strlen(vocab.tokens[i]) == len && memcmp(vocab.tokens[i], p, len) == 0;
        if (!found) {
            KD_ASSERT(vocab.n < VOCAB_MAX && vocab.used + len + 1 <= VOCAB_POOL,
                      "synthetic vocabulary tables outgrew the static pool");
            char *dst = vocab.pool + vocab.used;
            memcpy(dst, p, len);
            dst[len] = '\0';
            vocab.used += len + 1;
            vocab.tokens[vocab.n++] = dst;
        }
        p += len;
        while (*p == ' ')
            p++;
    }
}

#define VOCAB_ADD_TABLE(t)                                                    \
    for (uint32_t i_ = 0; i_ < COUNT(t); i_++)                                \
        vocab_add_phrase(t[i_])

/* Builds the token list once (static storage, no allocation). The first call
 * must not race with another thread; every rank calls it from its main
 * thread while loading data. */
static void vocab_build(void)
{
    if (vocab.built)
        return;
    static const char *const specials[] = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]",
                                           ",", "."};
    VOCAB_ADD_TABLE(specials);
    VOCAB_ADD_TABLE(determiners);
    VOCAB_ADD_TABLE(modifiers);
    VOCAB_ADD_TABLE(nouns);
    for (uint32_t i = 0; i < COUNT(adj_verbs); i++) {
        vocab_add_phrase(adj_verbs[i].plain);
        vocab_add_phrase(adj_verbs[i].negated[0]);
        vocab_add_phrase(adj_verbs[i].negated[1]);
    }
    for (uint32_t i = 0; i < COUNT(noun_verbs); i++) {
        vocab_add_phrase(noun_verbs[i].plain);
        vocab_add_phrase(noun_verbs[i].negated[0]);
        vocab_add_phrase(noun_verbs[i].negated[1]);
    }
    vocab_add_phrase("a");
    VOCAB_ADD_TABLE(adj_intensifiers);
    VOCAB_ADD_TABLE(noun_intensifiers);
    VOCAB_ADD_TABLE(positive_adjs);
    VOCAB_ADD_TABLE(negative_adjs);
    VOCAB_ADD_TABLE(positive_nouns);
    VOCAB_ADD_TABLE(negative_nouns);
    VOCAB_ADD_TABLE(frames);
    VOCAB_ADD_TABLE(openers);
    VOCAB_ADD_TABLE(tails);
    for (uint32_t i = 0; i < COUNT(contrasts); i++)
        vocab_add_phrase(contrasts[i].word);
    VOCAB_ADD_TABLE(verdicts);
    VOCAB_ADD_TABLE(pair_words);
    vocab.built = 1;
}

int32_t synthetic_vocab_size(void)
{
    vocab_build();
    return vocab.n;
}

const char *synthetic_vocab_token(int32_t id)
{
    vocab_build();
    return id >= 0 && id < vocab.n ? vocab.tokens[id] : NULL;
}

int synthetic_vocab_write(const char *path, struct kd_err *err)
{
    vocab_build();
    struct fs_atomic a;
    char msg[512];
    if (fs_atomic_open(&a, path, msg, sizeof msg))
        return kd_errf(err, "%s", msg);
    for (int32_t i = 0; i < vocab.n; i++)
        fprintf(a.f, "%s\n", vocab.tokens[i]);
    if (fs_atomic_commit(&a, msg, sizeof msg))
        return kd_errf(err, "%s", msg);
    return 0;
}

const char *synthetic_label_name(int kind, int32_t label)
{
    static const char *const single[] = {"negative", "positive"};
    static const char *const pair[] = {"inconsistent", "consistent"};
    if (label < 0 || label > 1)
        return "?";
    return kind == SYNTHETIC_PAIR ? pair[label] : single[label];
}

const char *synthetic_kind_name(int kind)
{
    return kind == SYNTHETIC_SINGLE ? "synthetic"
           : kind == SYNTHETIC_PAIR ? "synthetic_pair" : "?";
}

/* ---- random draws ----------------------------------------------------------- */

/* Draws per example; an example uses well under half of them. */
#define SYNTH_DRAWS 256
#define SYNTH_STREAM 0x53594e5400000000ull /* "SYNT" */

struct draw {
    uint64_t seed, stream, first, k;
};

static uint32_t draw_bits(struct draw *d)
{
    KD_ASSERT(d->k < SYNTH_DRAWS, "synthetic example used more than %d draws", SYNTH_DRAWS);
    return rng_bits_at(d->seed, d->stream, d->first + d->k++);
}

/* Uniform in [0, n) by multiply-shift (bias below n / 2^32). */
static uint32_t draw_below(struct draw *d, uint32_t n)
{
    return (uint32_t)(((uint64_t)draw_bits(d) * n) >> 32);
}

static int draw_chance(struct draw *d, double p)
{
    return draw_bits(d) < (uint32_t)(p * 4294967296.0);
}

#define PICK(d, table) (table[draw_below((d), COUNT(table))])

/* ---- sentence building -------------------------------------------------------- */

struct sbuf {
    char s[256];
    size_t n;
};

static void put(struct sbuf *b, const char *word)
{
    size_t len = strlen(word);
    KD_ASSERT(b->n + len + 2 < sizeof b->s, "synthetic sentence too long");
    if (b->n)
        b->s[b->n++] = ' ';
    memcpy(b->s + b->n, word, len + 1);
    b->n += len;
}

/* The sentiment word of a predicate: an adjective or a noun, its table
 * index and its prior polarity (+1/-1). */
struct sentiment_word {
    int noun;
    uint32_t index;
    int prior;
};

/* Appends a predicate whose final polarity (+1/-1) is pol, inside frames
 * that flip it when frame_neg. With echo, the sentiment word is echo's and
 * the negation follows from it; otherwise both are drawn. The word used goes
 * to *used (may be NULL). Without fill the intensifier is drawn but not
 * written (the same draws either way). Returns 1 if the verb was negated. */
static int put_predicate(struct draw *d, struct sbuf *b, int pol, int frame_neg,
                         const struct sentiment_word *echo, struct sentiment_word *used,
                         int fill)
{
    struct sentiment_word w;
    int neg;
    if (echo) {
        w = *echo;
        neg = w.prior * (frame_neg ? -1 : 1) != pol;
    } else {
        neg = draw_chance(d, P_NEGATED);
        w.prior = pol * (neg ? -1 : 1) * (frame_neg ? -1 : 1);
        w.noun = draw_chance(d, P_NOUN);
        w.index = w.noun ? draw_below(d, COUNT(positive_nouns))
                         : draw_below(d, COUNT(positive_adjs));
    }
    if (w.noun) {
        const struct verb *v = &PICK(d, noun_verbs);
        put(b, neg ? v->negated[draw_below(d, 2)] : v->plain);
        put(b, "a");
        if (draw_chance(d, P_INTENSIFIER)) {
            const char *iw = PICK(d, noun_intensifiers);
            if (fill)
                put(b, iw);
        }
        put(b, w.prior > 0 ? positive_nouns[w.index] : negative_nouns[w.index]);
    } else {
        const struct verb *v = &PICK(d, adj_verbs);
        put(b, neg ? v->negated[draw_below(d, 2)] : v->plain);
        if (draw_chance(d, P_INTENSIFIER)) {
            const char *iw = PICK(d, adj_intensifiers);
            if (fill)
                put(b, iw);
        }
        put(b, w.prior > 0 ? positive_adjs[w.index] : negative_adjs[w.index]);
    }
    if (used)
        *used = w;
    return neg;
}

/* Up to max_frames frames (the first with probability p, each further one,
 * different from the one before, with P_FRAME2) and then a full clause of
 * the single task: subject, predicate, optional tail. Fillers (modifier,
 * intensifier, tail) are drawn either way but written only with fill. The
 * sentiment word goes to *used (may be NULL). Returns the clause's
 * negations, frames included, and adds its tags. */
static int put_clause(struct draw *d, struct sbuf *b, uint32_t noun, int pol, double p,
                      int max_frames, int fill, uint32_t *tags, struct sentiment_word *used)
{
    int frame_negs = 0;
    uint32_t prev = COUNT(frames);
    for (int k = 0; k < max_frames && draw_chance(d, k == 0 ? p : P_FRAME2); k++) {
        uint32_t f = k == 0 ? draw_below(d, COUNT(frames))
                            : (prev + 1 + draw_below(d, COUNT(frames) - 1)) % COUNT(frames);
        put(b, frames[f]);
        frame_negs += f >= FRAMES_NEGATING_FROM;
        prev = f;
        *tags |= SYNTHETIC_TAG_FRAME;
    }
    put(b, PICK(d, determiners));
    if (draw_chance(d, P_MODIFIER)) {
        const char *w = PICK(d, modifiers);
        if (fill)
            put(b, w);
    }
    put(b, nouns[noun]);
    int neg = put_predicate(d, b, pol, frame_negs % 2, NULL, used, fill);
    if (draw_chance(d, P_TAIL)) {
        const char *w = PICK(d, tails);
        if (fill)
            put(b, w);
    }
    if (neg)
        *tags |= SYNTHETIC_TAG_NEGATION;
    if (neg + frame_negs >= 2)
        *tags |= SYNTHETIC_TAG_DOUBLE_NEG;
    return neg + frame_negs;
}

/* Two different nouns. */
static void draw_two_nouns(struct draw *d, uint32_t *n1, uint32_t *n2)
{
    *n1 = draw_below(d, COUNT(nouns));
    *n2 = (*n1 + 1 + draw_below(d, COUNT(nouns) - 1)) % COUNT(nouns);
}

/* A sentence body whose deciding clause has polarity pol: with
 * probability p_contrast a contrast (one of the six forms; the other clause
 * has -pol and each clause a frame with p_clause_frame), else one clause
 * under up to two frames (the first with P_FRAME). The sentiment words of
 * the deciding clause and of the other one go to words[0] and words[1]
 * (a simple body: both the same). */
static void put_body(struct draw *d, struct sbuf *a, int pol, double p_contrast,
                     double p_clause_frame, int fill, uint32_t *tags,
                     struct sentiment_word words[2])
{
    struct sentiment_word *win_w = &words[0], *lose_w = &words[1];
    if (draw_chance(d, p_contrast)) {
        uint32_t c = draw_below(d, COUNT(contrasts)), win, lose;
        draw_two_nouns(d, &win, &lose);
        *tags |= SYNTHETIC_TAG_CONTRAST;
        switch (contrasts[c].kind) {
        case CONTRAST_AFTER: /* lose , but win */
            put_clause(d, a, lose, -pol, p_clause_frame, 1, fill, tags, lose_w);
            put(a, ",");
            put(a, contrasts[c].word);
            put_clause(d, a, win, pol, p_clause_frame, 1, fill, tags, win_w);
            break;
        case CONTRAST_FRONT: /* although lose , win */
            put(a, contrasts[c].word);
            put_clause(d, a, lose, -pol, p_clause_frame, 1, fill, tags, lose_w);
            put(a, ",");
            put_clause(d, a, win, pol, p_clause_frame, 1, fill, tags, win_w);
            break;
        default: /* win , although lose */
            put_clause(d, a, win, pol, p_clause_frame, 1, fill, tags, win_w);
            put(a, ",");
            put(a, contrasts[c].word);
            put_clause(d, a, lose, -pol, p_clause_frame, 1, fill, tags, lose_w);
            break;
        }
    } else {
        put_clause(d, a, draw_below(d, COUNT(nouns)), pol, P_FRAME, 2, fill, tags, win_w);
        *lose_w = *win_w;
    }
}

/* The single task from the current draw on, with or without fillers. */
static int32_t gen_single_from(struct draw *d, struct sbuf *a, uint32_t *tags, int fill)
{
    int32_t label = (int32_t)draw_below(d, 2);
    int pol = label ? 1 : -1;
    struct sentiment_word words[2];
    if (draw_chance(d, P_OPENER)) {
        const char *w = PICK(d, openers);
        if (fill) {
            put(a, w);
            put(a, ",");
        }
    }
    put_body(d, a, pol, P_CONTRAST, P_CLAUSE_FRAME, fill, tags, words);
    put(a, ".");
    return label;
}

/* Words of a sentence (single spaces between them). */
static size_t word_count(const struct sbuf *b)
{
    size_t n = b->n ? 1 : 0;
    for (size_t i = 0; i < b->n; i++)
        n += b->s[i] == ' ';
    return n;
}

/* One example of the single task; returns the clean label. A sentence that
 * would not fit SYNTHETIC_MAX_TOKENS is built again from the same draws
 * without its fillers, so its structure and label stay as drawn. */
static int32_t gen_single(struct draw *d, struct sbuf *a, uint32_t *tags)
{
    const uint64_t k0 = d->k;
    int32_t label = gen_single_from(d, a, tags, 1);
    if (word_count(a) + 2 > SYNTHETIC_MAX_TOKENS) {
        d->k = k0;
        a->n = 0;
        a->s[0] = '\0';
        *tags = 0;
        label = gen_single_from(d, a, tags, 0);
    }
    return label;
}

/* The pair task from the current draw on, with or without fillers: a
 * premise body (no opener, no period, no frames on contrast clauses, which
 * keeps premise + hypothesis within SYNTHETIC_MAX_TOKENS) and a verdict on
 * it. With P_HYP_PLAIN the verdict is plainly positive (no negation, a
 * positive word): there the label is the premise's polarity, which lets a
 * model learn to read the premise. Otherwise its polarity is drawn
 * uniformly, with negations and echoes, and only both texts together
 * decide. So the premise alone predicts 80% of the labels and the
 * hypothesis alone none (labels stay uniform). */
static int32_t gen_pair_from(struct draw *d, struct sbuf *a, struct sbuf *b, uint32_t *tags,
                             int fill)
{
    int32_t label = (int32_t)draw_below(d, 2);
    int plain = draw_chance(d, P_HYP_PLAIN);
    int hyp = plain || draw_below(d, 2) ? 1 : -1;
    int pol = label ? hyp : -hyp; /* the premise's deciding clause */
    struct sentiment_word words[2], pos;
    put_body(d, a, pol, P_PAIR_CONTRAST, 0.0, fill, tags, words);
    put(b, PICK(d, verdicts));
    put(b, "it");
    const struct sentiment_word *echo = NULL;
    if (plain) {
        /* a positive word given as the echo keeps the verb plain */
        pos.prior = 1;
        pos.noun = draw_chance(d, P_NOUN);
        pos.index = pos.noun ? draw_below(d, COUNT(positive_nouns))
                             : draw_below(d, COUNT(positive_adjs));
        echo = &pos;
    } else if (draw_chance(d, P_ECHO)) {
        /* the sentiment word of the deciding clause or of the other one,
         * so that only the negations and the clause roles decide */
        echo = &words[draw_below(d, 2)];
        *tags |= SYNTHETIC_TAG_ECHO;
    }
    if (put_predicate(d, b, hyp, 0, echo, NULL, fill))
        *tags |= SYNTHETIC_TAG_NEGATION;
    return label;
}

/* One example of the pair task; returns the clean label. Like the single
 * task, an example that would not fit is built again without fillers. */
static int32_t gen_pair(struct draw *d, struct sbuf *a, struct sbuf *b, uint32_t *tags)
{
    const uint64_t k0 = d->k;
    int32_t label = gen_pair_from(d, a, b, tags, 1);
    if (word_count(a) + word_count(b) + 3 > SYNTHETIC_MAX_TOKENS) {
        d->k = k0;
        a->n = b->n = 0;
        a->s[0] = b->s[0] = '\0';
        *tags = 0;
        label = gen_pair_from(d, a, b, tags, 0);
    }
    return label;
}

/* ---- sets ------------------------------------------------------------------- */

void synthetic_free(struct synthetic_set *s)
{
    free(s->ex);
    free(s->text);
    memset(s, 0, sizeof *s);
}

int synthetic_generate(struct synthetic_set *s, int kind, int split, int64_t n,
                       uint64_t seed, double noise, struct kd_err *err)
{
    memset(s, 0, sizeof *s);
    if (kind != SYNTHETIC_SINGLE && kind != SYNTHETIC_PAIR)
        return kd_errf(err, "synthetic task: expected kind synthetic or synthetic_pair, "
                       "got %d", kind);
    if (split < SYNTHETIC_SPLIT_TRAIN || split > SYNTHETIC_SPLIT_TEST)
        return kd_errf(err, "synthetic task: expected split train, dev or test, got %d",
                       split);
    if (n < 1)
        return kd_errf(err, "synthetic task: expected at least 1 example, got %lld",
                       (long long)n);
    if (!(noise >= 0.0 && noise <= 0.5))
        return kd_errf(err, "synthetic task: expected data.synthetic_noise in [0, 0.5], "
                       "got %g", noise);
    s->kind = kind;
    s->split = split;
    s->seed = seed;
    s->noise = noise;
    s->n = n;
    s->ex = kd_calloc((size_t)n, sizeof *s->ex);
    /* texts go to one growing buffer; offsets become pointers at the end */
    size_t cap = (size_t)n * (kind == SYNTHETIC_PAIR ? 96 : 64) + 256, used = 0;
    s->text = kd_malloc(cap);
    int64_t *off = kd_malloc((size_t)n * 2 * sizeof *off);
    struct draw d = {seed, SYNTH_STREAM | ((uint64_t)kind << 8) | (uint64_t)split, 0, 0};
    for (int64_t i = 0; i < n; i++) {
        struct sbuf a = {.n = 0}, b = {.n = 0};
        uint32_t tags = 0;
        d.first = (uint64_t)i * SYNTH_DRAWS;
        d.k = 0;
        int32_t label = kind == SYNTHETIC_PAIR ? gen_pair(&d, &a, &b, &tags)
                                                : gen_single(&d, &a, &tags);
        if (cap - used < a.n + b.n + 2) {
            cap = 2 * cap + a.n + b.n + 2;
            s->text = kd_realloc(s->text, cap);
        }
        off[2 * i] = (int64_t)used;
        memcpy(s->text + used, a.s, a.n + 1);
        used += a.n + 1;
        off[2 * i + 1] = -1;
        if (kind == SYNTHETIC_PAIR) {
            off[2 * i + 1] = (int64_t)used;
            memcpy(s->text + used, b.s, b.n + 1);
            used += b.n + 1;
        }
        s->ex[i].label = s->ex[i].clean_label = label;
        s->ex[i].tags = tags;
    }
    for (int64_t i = 0; i < n; i++) {
        s->ex[i].text_a = s->text + off[2 * i];
        s->ex[i].text_b = off[2 * i + 1] >= 0 ? s->text + off[2 * i + 1] : NULL;
    }
    free(off);

    /* noise: the first round(noise * n) indices of a seeded Fisher-Yates
     * permutation get the other label */
    s->n_flipped = (int64_t)llround(noise * (double)n);
    if (s->n_flipped > 0) {
        int64_t *perm = kd_malloc((size_t)n * sizeof *perm);
        for (int64_t i = 0; i < n; i++)
            perm[i] = i;
        uint64_t stream = d.stream | 0x80;
        for (int64_t i = 0; i < s->n_flipped; i++) {
            /* 64 random bits for the swap partner of position i */
            uint64_t r = ((uint64_t)rng_bits_at(seed, stream, 2 * (uint64_t)i) << 32) |
                         rng_bits_at(seed, stream, 2 * (uint64_t)i + 1);
            int64_t j = i + (int64_t)(r % (uint64_t)(n - i));
            int64_t t = perm[i];
            perm[i] = perm[j];
            perm[j] = t;
            struct synthetic_example *e = &s->ex[perm[i]];
            e->label = 1 - e->clean_label;
            e->tags |= SYNTHETIC_TAG_FLIPPED;
        }
        free(perm);
    }
    return 0;
}
