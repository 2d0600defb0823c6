dist_jobs_DATA += jobs/demo.cfg jobs/bert-base-sst2.cfg jobs/bert-large.cfg
