# kd tests: layer maps and validation messages, the Aguilar et al. schedules,
# each loss term against double references and finite differences (as a
# function of the student's logits / hidden states / attention scores), and
# the terms end to end through a tiny student BERT (tests/gradcheck.h).
KD_TEST_CPPFLAGS = $(AM_CPPFLAGS) -DKD_TOP_SRCDIR='"$(abs_top_srcdir)"'

KD_TESTS = tests/kd/t_kd_schedule tests/kd/t_kd_layer_map tests/kd/t_kd_output \
	tests/kd/t_kd_hidden tests/kd/t_kd_attention tests/kd/t_kd_bert_grad \
	tests/kd/t_kd_job_opts
check_PROGRAMS += $(KD_TESTS)
TESTS += $(KD_TESTS)

tests_kd_t_kd_schedule_SOURCES = tests/kd/t_kd_schedule.c
tests_kd_t_kd_schedule_LDADD = $(TEST_LIBS)
tests_kd_t_kd_layer_map_SOURCES = tests/kd/t_kd_layer_map.c $(BERT_TEST_UTIL)
tests_kd_t_kd_layer_map_CPPFLAGS = $(KD_TEST_CPPFLAGS)
tests_kd_t_kd_layer_map_LDADD = $(TEST_LIBS)
tests_kd_t_kd_output_SOURCES = tests/kd/t_kd_output.c $(BERT_TEST_UTIL)
tests_kd_t_kd_output_CPPFLAGS = $(KD_TEST_CPPFLAGS)
tests_kd_t_kd_output_LDADD = $(TEST_LIBS)
tests_kd_t_kd_hidden_SOURCES = tests/kd/t_kd_hidden.c $(BERT_TEST_UTIL)
tests_kd_t_kd_hidden_CPPFLAGS = $(KD_TEST_CPPFLAGS)
tests_kd_t_kd_hidden_LDADD = $(TEST_LIBS)
tests_kd_t_kd_attention_SOURCES = tests/kd/t_kd_attention.c $(BERT_TEST_UTIL)
tests_kd_t_kd_attention_CPPFLAGS = $(KD_TEST_CPPFLAGS)
tests_kd_t_kd_attention_LDADD = $(TEST_LIBS)
tests_kd_t_kd_bert_grad_SOURCES = tests/kd/t_kd_bert_grad.c $(BERT_TEST_UTIL)
tests_kd_t_kd_bert_grad_CPPFLAGS = $(KD_TEST_CPPFLAGS)
tests_kd_t_kd_bert_grad_LDADD = $(TEST_LIBS)
tests_kd_t_kd_job_opts_SOURCES = tests/kd/t_kd_job_opts.c $(BERT_TEST_UTIL)
tests_kd_t_kd_job_opts_CPPFLAGS = $(KD_TEST_CPPFLAGS)
tests_kd_t_kd_job_opts_LDADD = $(TEST_LIBS)
# least-squares projection initialisation, collective: on 1, 2 and 4 ranks
check_PROGRAMS += tests/kd/p_kd_projection_fit
tests_kd_p_kd_projection_fit_SOURCES = tests/kd/p_kd_projection_fit.c $(BERT_TEST_UTIL)
tests_kd_p_kd_projection_fit_CPPFLAGS = $(KD_TEST_CPPFLAGS)
tests_kd_p_kd_projection_fit_LDADD = $(TEST_LIBS)
TESTS += tests/kd/projection_fit.sh
EXTRA_DIST += tests/kd/projection_fit.sh
