# BERT model tests: golden comparison with PyTorch (tests/fixtures/models),
# finite differences of the whole model, checkpoint round trips and errors,
# the memory bound against the measured peak RSS, 20 AdamW steps against
# PyTorch (with model/optim.h), and a real checkpoint (all-MiniLM-L6-v2,
# skipped unless KD_REAL_BERT_DIR names it; golden values from
# tests/gen/make_bert_real_golden.py).
BERT_TEST_CPPFLAGS = $(AM_CPPFLAGS) -DKD_TOP_SRCDIR='"$(abs_top_srcdir)"'
BERT_TEST_UTIL = tests/model/bert_testutil.c tests/model/bert_testutil.h

BERT_TESTS = tests/model/t_bert_golden tests/model/t_bert_grad \
	tests/model/t_bert_checkpoint tests/model/t_bert_memory tests/model/t_bert_train20 \
	tests/model/t_bert_real
check_PROGRAMS += $(BERT_TESTS)
TESTS += $(BERT_TESTS)

tests_model_t_bert_golden_SOURCES = tests/model/t_bert_golden.c $(BERT_TEST_UTIL)
tests_model_t_bert_golden_CPPFLAGS = $(BERT_TEST_CPPFLAGS)
tests_model_t_bert_golden_LDADD = $(TEST_LIBS)
tests_model_t_bert_grad_SOURCES = tests/model/t_bert_grad.c $(BERT_TEST_UTIL)
tests_model_t_bert_grad_CPPFLAGS = $(BERT_TEST_CPPFLAGS)
tests_model_t_bert_grad_LDADD = $(TEST_LIBS)
tests_model_t_bert_checkpoint_SOURCES = tests/model/t_bert_checkpoint.c $(BERT_TEST_UTIL)
tests_model_t_bert_checkpoint_CPPFLAGS = $(BERT_TEST_CPPFLAGS)
tests_model_t_bert_checkpoint_LDADD = $(TEST_LIBS)
tests_model_t_bert_memory_SOURCES = tests/model/t_bert_memory.c $(BERT_TEST_UTIL)
tests_model_t_bert_memory_CPPFLAGS = $(BERT_TEST_CPPFLAGS)
tests_model_t_bert_memory_LDADD = $(TEST_LIBS)
tests_model_t_bert_train20_SOURCES = tests/model/t_bert_train20.c $(BERT_TEST_UTIL)
tests_model_t_bert_train20_CPPFLAGS = $(BERT_TEST_CPPFLAGS)
tests_model_t_bert_train20_LDADD = $(TEST_LIBS)
tests_model_t_bert_real_SOURCES = tests/model/t_bert_real.c $(BERT_TEST_UTIL)
tests_model_t_bert_real_CPPFLAGS = $(BERT_TEST_CPPFLAGS)
tests_model_t_bert_real_LDADD = $(TEST_LIBS)

EXTRA_DIST += tests/gen/make_bert_real_golden.py \
	tests/fixtures/bert_real/minilm_golden.safetensors
