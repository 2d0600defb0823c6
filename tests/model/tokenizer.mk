# tokenizer tests: golden cases from Hugging Face BertTokenizer on small
# hand-made vocabularies, vocabulary reading and its errors, and the real
# bert-base-uncased vocabulary on SST-2 (skipped without $KD_SHARED/data).
# Fixtures are written by tests/gen/make_tokenizer_cases.py.
TOKENIZER_TEST_HELPERS = tests/model/t_tokenizer_cases.c tests/model/t_tokenizer_cases.h

check_PROGRAMS += tests/model/t_tokenizer tests/model/t_tokenizer_vocab \
	tests/model/t_tokenizer_sst2
tests_model_t_tokenizer_SOURCES = tests/model/t_tokenizer.c $(TOKENIZER_TEST_HELPERS)
tests_model_t_tokenizer_LDADD = $(TEST_LIBS)
tests_model_t_tokenizer_vocab_SOURCES = tests/model/t_tokenizer_vocab.c \
	$(TOKENIZER_TEST_HELPERS)
tests_model_t_tokenizer_vocab_LDADD = $(TEST_LIBS)
tests_model_t_tokenizer_sst2_SOURCES = tests/model/t_tokenizer_sst2.c \
	$(TOKENIZER_TEST_HELPERS)
tests_model_t_tokenizer_sst2_LDADD = $(TEST_LIBS)
TESTS += tests/model/t_tokenizer tests/model/t_tokenizer_vocab tests/model/t_tokenizer_sst2

EXTRA_DIST += tests/gen/make_tokenizer_cases.py \
	tests/fixtures/tokenizer/vocab_uncased.txt \
	tests/fixtures/tokenizer/vocab_cased.txt \
	tests/fixtures/tokenizer/cases.tsv \
	tests/fixtures/tokenizer/bert_uncased_cases.tsv \
	tests/fixtures/tokenizer/sst2_dev_uncased.tsv
