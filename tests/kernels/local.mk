# kernel tests: forward vs naive double references, finite-difference
# gradients (tests/gradcheck.c, also used by the model and kd tests), and
# invariants. One program per kernel, each a TAP stream.
tests_libtap_a_SOURCES += tests/gradcheck.c tests/gradcheck.h

KERNEL_TESTS = tests/kernels/t_rng tests/kernels/t_gemm tests/kernels/t_linear \
	tests/kernels/t_gelu tests/kernels/t_layernorm tests/kernels/t_softmax \
	tests/kernels/t_attention tests/kernels/t_embedding tests/kernels/t_dropout \
	tests/kernels/t_losses tests/kernels/t_elementwise tests/kernels/t_threads
check_PROGRAMS += $(KERNEL_TESTS)
TESTS += $(KERNEL_TESTS)

tests_kernels_t_rng_SOURCES = tests/kernels/t_rng.c
tests_kernels_t_rng_LDADD = $(TEST_LIBS)
tests_kernels_t_gemm_SOURCES = tests/kernels/t_gemm.c
tests_kernels_t_gemm_LDADD = $(TEST_LIBS)
tests_kernels_t_linear_SOURCES = tests/kernels/t_linear.c
tests_kernels_t_linear_LDADD = $(TEST_LIBS)
tests_kernels_t_gelu_SOURCES = tests/kernels/t_gelu.c
tests_kernels_t_gelu_LDADD = $(TEST_LIBS)
tests_kernels_t_layernorm_SOURCES = tests/kernels/t_layernorm.c
tests_kernels_t_layernorm_LDADD = $(TEST_LIBS)
tests_kernels_t_softmax_SOURCES = tests/kernels/t_softmax.c
tests_kernels_t_softmax_LDADD = $(TEST_LIBS)
tests_kernels_t_attention_SOURCES = tests/kernels/t_attention.c
tests_kernels_t_attention_LDADD = $(TEST_LIBS)
tests_kernels_t_embedding_SOURCES = tests/kernels/t_embedding.c
tests_kernels_t_embedding_LDADD = $(TEST_LIBS)
tests_kernels_t_dropout_SOURCES = tests/kernels/t_dropout.c
tests_kernels_t_dropout_LDADD = $(TEST_LIBS)
tests_kernels_t_losses_SOURCES = tests/kernels/t_losses.c
tests_kernels_t_losses_LDADD = $(TEST_LIBS)
tests_kernels_t_elementwise_SOURCES = tests/kernels/t_elementwise.c
tests_kernels_t_elementwise_LDADD = $(TEST_LIBS)
# the engine's own threads (OpenMP) change no result: 1 thread against 2
tests_kernels_t_threads_SOURCES = tests/kernels/t_threads.c
tests_kernels_t_threads_LDADD = $(TEST_LIBS)
