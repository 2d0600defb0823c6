/* tokenizer.h: the BERT WordPiece tokenizer (model layer; knows nothing of
 * MPI, HDF5 or the job layer).
 *
 * Reproduces Hugging Face transformers' BertTokenizer (the Python "slow"
 * tokenizer, 4.40) id for id:
 *
 *   text -> split out the special tokens written literally in the text
 *        -> (uncased) lowercase every other code point, as str.lower()
 *        -> basic tokenizer: drop NUL, U+FFFD and control characters (Unicode
 *           C*), map whitespace (tab, LF, CR, Zs) to ' ', surround CJK
 *           ideographs with spaces, NFC, split on whitespace, then per word:
 *           (uncased) lowercase + NFD + drop Mn, split off punctuation
 *        -> WordPiece: greedy longest match first, "##" continuation pieces,
 *           [UNK] for a word of more than 100 code points or with no match
 *        -> [CLS] a [SEP] (b [SEP]), longest-first truncation, padding.
 *
 * Vocabulary file format (vocab.txt): UTF-8, one token per line, the id of
 * a token is its 0-based line index. Lines end in LF, CRLF or CR (as Python's
 * universal newlines); the last line may lack its newline. Empty lines,
 * duplicate tokens, invalid UTF-8 and an empty file are errors naming the file
 * and line. [UNK], [CLS], [SEP] and [PAD] must be present; [MASK] is optional.
 *
 * Known differences from transformers (none reachable with English GLUE):
 * - Unicode tables are utf8proc's (Unicode 15.0, as Python 3.12). Under
 *   Python 3.11 (Unicode 14.0) transformers removes the ~4,500 code points
 *   new in 15.0 as unassigned (Cn), e.g. CJK Extension H; here they are kept.
 * - Invalid UTF-8 in the input text is read as U+FFFD, i.e. removed.
 * - Without [MASK] in the vocabulary, "[MASK]" in the text is plain text
 *   (transformers appends it as an extra token with id vocab_size).
 * - A single sequence that must lose all its tokens (max_len 2) is emptied;
 *   transformers logs an error and does not truncate.
 *
 * Threads: a tokenizer keeps scratch buffers, so one handle must not encode in
 * two threads at once. Loading is the only allocation of note (the file's
 * bytes, two id arrays and two hash tables: under 1 MB for bert-base-uncased);
 * encoding reuses the scratch buffers once they have grown to the longest
 * text seen.
 */
#ifndef KD_MODEL_TOKENIZER_H
#define KD_MODEL_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "kd/core/error.h"

/* transformers' WordpieceTokenizer.max_input_chars_per_word */
#define TOKENIZER_MAX_WORD_CHARS 100

/* Opaque handle (vocabulary, hash tables, options, scratch buffers). */
typedef struct tokenizer tokenizer_t;

enum tokenizer_special {
    TOKENIZER_SPECIAL_PAD = 0,  /* "[PAD]" */
    TOKENIZER_SPECIAL_UNK = 1,  /* "[UNK]" */
    TOKENIZER_SPECIAL_CLS = 2,  /* "[CLS]" */
    TOKENIZER_SPECIAL_SEP = 3,  /* "[SEP]" */
    TOKENIZER_SPECIAL_MASK = 4, /* "[MASK]", optional */
    TOKENIZER_SPECIAL_COUNT = 5
};

/* A growable list of token ids owned by the caller. Zero-initialise it
 * ({0}) before first use and release it with tokenizer_ids_free. */
struct tokenizer_ids {
    int32_t *ids;
    size_t n;   /* ids in use */
    size_t cap; /* ids allocated */
};

/* Reads vocab_path and builds a tokenizer. do_lower_case selects the uncased
 * pipeline (lowercasing and accent stripping, as bert-base-uncased) or the
 * cased one (text kept as is, as bert-base-cased).
 * Returns 0 and sets *out, or -1 with err naming the file (and line). */
int tokenizer_load(tokenizer_t **out, const char *vocab_path, int do_lower_case,
                   struct kd_err *err);
/* Releases everything; NULL is allowed. */
void tokenizer_free(tokenizer_t *tok);

/* Number of tokens in the vocabulary (V). */
int32_t tokenizer_vocab_size(const tokenizer_t *tok);
int tokenizer_do_lower_case(const tokenizer_t *tok);
/* Id of a special token, or -1 if absent (only [MASK] can be absent). */
int32_t tokenizer_special_id(const tokenizer_t *tok, enum tokenizer_special which);
/* Exact vocabulary lookup of a token string (e.g. "##ing"); -1 if absent. */
int32_t tokenizer_token_to_id(const tokenizer_t *tok, const char *token);
/* The token string of an id (NUL-terminated, owned by the tokenizer), or
 * NULL when id is outside [0, V). */
const char *tokenizer_id_to_token(const tokenizer_t *tok, int32_t id);

/* Tokenizes text (len bytes of UTF-8, may contain NUL bytes) to WordPiece
 * ids without [CLS]/[SEP], APPENDING them to out. Returns 0. */
int tokenizer_tokenize(tokenizer_t *tok, const char *text, size_t len,
                       struct tokenizer_ids *out);
void tokenizer_ids_free(struct tokenizer_ids *ids);

/* Encodes one sequence (text_b == NULL) as "[CLS] a [SEP]" or a pair as
 * "[CLS] a [SEP] b [SEP]" into caller-provided arrays of max_len entries:
 *   input_ids       (T)  token ids, then the [PAD] id
 *   token_type_ids  (T)  0 up to and including the first [SEP], 1 for b and
 *                        its [SEP], 0 on padding; may be NULL
 *   attention_mask  (T)  1 on real tokens, 0 on padding; may be NULL
 * with T = max_len. Too long inputs are truncated longest-first: one token
 * at a time from the end of the longer sequence, from b on a tie.
 * Returns the real length (<= max_len), or -1 with err set when max_len is
 * below the special tokens' count (2 single, 3 pair). */
int64_t tokenizer_encode(tokenizer_t *tok, const char *text_a, size_t len_a,
                         const char *text_b, size_t len_b, int64_t max_len,
                         int32_t *input_ids, int32_t *token_type_ids,
                         int32_t *attention_mask, struct kd_err *err);

/* Writes the token strings of ids[0..n) separated by single spaces into buf
 * (cap bytes, always NUL-terminated when cap > 0; ids outside the vocabulary
 * print as "<id?>"). Returns the length the full text needs, as snprintf
 * does, so a result >= cap means it was cut. For debugging and test output. */
size_t tokenizer_ids_format(const tokenizer_t *tok, const int32_t *ids, size_t n,
                            char *buf, size_t cap);

#endif
