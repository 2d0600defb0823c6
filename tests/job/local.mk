check_PROGRAMS += tests/job/t_job_config tests/job/t_layout tests/job/t_store_needs
tests_job_t_job_config_SOURCES = tests/job/t_job_config.c
tests_job_t_job_config_LDADD = $(TEST_LIBS)
tests_job_t_layout_SOURCES = tests/job/t_layout.c
tests_job_t_layout_LDADD = $(TEST_LIBS)
# what an extract stage stores for the distill stages that read it
tests_job_t_store_needs_SOURCES = tests/job/t_store_needs.c
tests_job_t_store_needs_LDADD = $(TEST_LIBS)
TESTS += tests/job/t_job_config tests/job/t_layout tests/job/t_store_needs tests/job/cli.sh
EXTRA_DIST += tests/job/cli.sh \
	tests/job/bad/01-syntax.cfg \
	tests/job/bad/02-unknown-key.cfg \
	tests/job/bad/03-unknown-section.cfg \
	tests/job/bad/04-int-got-string.cfg \
	tests/job/bad/05-int-range.cfg \
	tests/job/bad/06-float-got-string.cfg \
	tests/job/bad/07-bool-got-int.cfg \
	tests/job/bad/08-bad-enum.cfg \
	tests/job/bad/09-missing-name.cfg \
	tests/job/bad/10-missing-stages.cfg \
	tests/job/bad/11-stage-missing-kind.cfg \
	tests/job/bad/12-stage-bad-kind.cfg \
	tests/job/bad/13-key-wrong-stage.cfg \
	tests/job/bad/14-duplicate-stage.cfg \
	tests/job/bad/15-distill-no-losses.cfg \
	tests/job/bad/16-loss-missing-kind.cfg \
	tests/job/bad/17-loss-key-wrong-kind.cfg \
	tests/job/bad/18-explicit-map-lengths.cfg \
	tests/job/bad/19-heads-divide.cfg \
	tests/job/bad/20-tsv-needs-files.cfg \
	tests/job/bad/21-int-list-element.cfg \
	tests/job/bad/22-enum-list-element.cfg \
	tests/job/bad/23-stages-not-list.cfg \
	tests/job/bad/24-many-errors.cfg \
	tests/job/bad/25-pid-without-internal.cfg \
	tests/job/bad/26-attention-heads-differ.cfg \
	tests/job/bad/27-finetune-after-extract.cfg \
	tests/job/bad/28-section-not-group.cfg \
	tests/job/bad/29-float-for-int.cfg \
	tests/job/bad/30-online-needs-teacher-ranks.cfg \
	tests/job/bad/31-missing-include.cfg \
	tests/job/bad/32-unbalanced.cfg \
	tests/job/bad/33-soft-form-bad-value.cfg \
	tests/job/bad/34-loss-form-rows-wrong-kind.cfg \
	tests/job/bad/35-init-projections-no-hidden.cfg \
	tests/job/bad/36-init-projections-equal-widths.cfg
# a real training-state checkpoint against hdf5-schemas/train_state.v1.{md,ddl}
TESTS += tests/job/train_state_schema.sh
EXTRA_DIST += tests/job/train_state_schema.sh
