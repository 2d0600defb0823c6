# kd/loss.mk: files are added as the work lands
