# checkpoint tests: safetensors reader/writer, config.json, header fuzzing.
# Fixtures come from tests/gen/make_checkpoint_cases.py (not run by make
# check); tests/gen/check_written_checkpoint.py checks a directory exported
# by t_safetensors with Python's safetensors and transformers (by hand).
CKPT_TEST_CPPFLAGS = $(AM_CPPFLAGS) -DKD_TOP_SRCDIR='"$(abs_top_srcdir)"'
CKPT_TEST_UTIL = tests/model/ckpt_util.c tests/model/ckpt_util.h

check_PROGRAMS += tests/model/t_safetensors tests/model/t_hf_config \
	tests/model/t_safetensors_fuzz
TESTS += tests/model/t_safetensors tests/model/t_hf_config \
	tests/model/t_safetensors_fuzz

tests_model_t_safetensors_SOURCES = tests/model/t_safetensors.c $(CKPT_TEST_UTIL)
tests_model_t_safetensors_CPPFLAGS = $(CKPT_TEST_CPPFLAGS)
tests_model_t_safetensors_LDADD = $(TEST_LIBS)

tests_model_t_hf_config_SOURCES = tests/model/t_hf_config.c $(CKPT_TEST_UTIL)
tests_model_t_hf_config_CPPFLAGS = $(CKPT_TEST_CPPFLAGS)
tests_model_t_hf_config_LDADD = $(TEST_LIBS)

tests_model_t_safetensors_fuzz_SOURCES = tests/model/t_safetensors_fuzz.c $(CKPT_TEST_UTIL)
tests_model_t_safetensors_fuzz_CPPFLAGS = $(CKPT_TEST_CPPFLAGS)
tests_model_t_safetensors_fuzz_LDADD = $(TEST_LIBS)

EXTRA_DIST += tests/gen/make_checkpoint_cases.py tests/gen/check_written_checkpoint.py \
	tests/fixtures/checkpoint/dtypes.safetensors \
	tests/fixtures/checkpoint/base/config.json \
	tests/fixtures/checkpoint/base/model.safetensors \
	tests/fixtures/checkpoint/mlm_tf/model.safetensors \
	tests/fixtures/checkpoint/seqcls/config.json \
	tests/fixtures/checkpoint/seqcls/model-00001-of-00002.safetensors \
	tests/fixtures/checkpoint/seqcls/model-00002-of-00002.safetensors \
	tests/fixtures/checkpoint/seqcls/model.safetensors.index.json \
	tests/fixtures/checkpoint/configs/bert_base.json \
	tests/fixtures/checkpoint/configs/labels.json \
	tests/fixtures/checkpoint/configs/pruned.json \
	tests/fixtures/checkpoint/configs/regression.json
