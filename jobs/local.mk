dist_jobs_DATA += jobs/demo.cfg jobs/bert-base-sst2.cfg jobs/bert-large.cfg
batchdir = $(pkgdatadir)
nobase_dist_batch_DATA = jobs/slurm/bert-large.sbatch jobs/pbs/bert-large.pbs
