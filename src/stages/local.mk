# stages/: the stage implementations and what they share (data, models,
# batches, the training loop).
src_libkd_a_SOURCES += src/stages/stage_data.c src/stages/stage_models.c \
	src/stages/batch_rows.c src/stages/trainer.c src/stages/stage_model.c \
	src/stages/task_metric.c src/stages/dev_eval.c src/stages/grad_sync.c \
	src/stages/finetune.c src/stages/finetune_pipeline.c src/stages/pipe_comms.c \
	src/stages/teacher_outputs.c src/stages/extract_common.c src/stages/extract.c \
	src/stages/extract_pipeline.c src/stages/export.c \
	src/stages/teacher_reader.c src/stages/distill.c src/stages/evaluate.c \
	src/stages/student_setup.c src/stages/batch_plan.c \
	src/stages/online_wire.c src/stages/online_student.c src/stages/online_teacher.c \
	src/stages/projection_fit.c
noinst_HEADERS += include/kd/stages/stage_data.h include/kd/stages/stage_models.h \
	include/kd/stages/batch_rows.h include/kd/stages/trainer.h \
	include/kd/stages/stage_model.h include/kd/stages/task_metric.h \
	include/kd/stages/dev_eval.h include/kd/stages/grad_sync.h \
	include/kd/stages/finetune_pipeline.h include/kd/stages/pipe_comms.h \
	include/kd/stages/teacher_outputs.h include/kd/stages/extract_common.h \
	include/kd/stages/student_setup.h include/kd/stages/teacher_reader.h \
	include/kd/stages/batch_plan.h include/kd/stages/online.h \
	include/kd/stages/projection_fit.h
