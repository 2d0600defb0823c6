dist_doc_DATA += docs/job-config.md docs/store-performance.md docs/performance.md docs/synthetic-task.md
# raw JSON lines behind the engine tables (bench/engine_bench.sh --table)
EXTRA_DIST += docs/bench/engine-2026-11-22.jsonl
