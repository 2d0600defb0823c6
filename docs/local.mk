dist_doc_DATA += docs/job-config.md docs/store-performance.md docs/performance.md docs/synthetic-task.md
