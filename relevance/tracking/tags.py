"""The MLflow tag names this package writes and reads back: a run's identity, sweep parents.

Kept apart from the code that writes them so readers (`relevance.tracking.runs`, compare,
the notebook) need not import the sweep callback or the identity computation.
"""

# a run's identity (relevance.tracking.identity); every training run carries them
CONFIG_HASH_TAG = "relevance.config_hash"
DATA_DIGEST_TAG = "relevance.data_digest"
CODE_DIGEST_TAG = "relevance.code_digest"  # the package's source (relevance.tracking.identity.code_digest)
STRATEGY_VERSIONS_TAG = "relevance.strategy_versions"
NUMERICS_TAG = "relevance.numerics"  # JSON: compute dtype, backbone digest, torch/transformers/peft/bitsandbytes
RUN_IDENTITY_TAG = "relevance.run_identity"  # the five above combined: what resume looks up

# sweep parent runs (relevance.tracking.sweep_parents, relevance.tracking.sweep_summary)
SWEEP_TAG = "relevance.sweep"
SWEEP_ID_TAG = "relevance.sweep.id"
REUSED_TAG = "relevance.sweep.reused_run_ids"

# a run's liveness and interruptions (relevance.tracking.heartbeat, .interrupted); training runs and sweep parents
HEARTBEAT_TAG = "relevance.heartbeat"  # UTC time of the last heartbeat, refreshed while the process lives
HOST_TAG = "relevance.host"  # the machine and process that run it now
PID_TAG = "relevance.pid"
KILL_REASON_TAG = "relevance.kill_reason"  # why a run is KILLED: a stop signal, or its process vanished
RESUMED_FROM_STEP_TAG = "relevance.resumed_from_step"  # a KILLED run continued: from this optimizer step
RESUMED_AFTER_TAG = "relevance.resumed_after"  # ... after this interruption (the kill reason it had)
PREVIOUS_PARENT_TAG = "relevance.previous_parent"  # a sweep re-run moved the resumed child under its parent
PREVIOUS_RUN_NAME_TAG = "relevance.previous_run_name"  # a continued run's name before this attempt renamed it
ENDED_BY_TAG = "relevance.ended_by"  # a failed run ended FAILED by a later run: by whom and why

# results the store could not take when training finished (relevance.tracking.pending)
OUTPUT_DIR_TAG = "relevance.output_dir"  # the run's local output folder: where a pending record would be
LOGGED_LATE_TAG = "relevance.logged_late"  # its results were logged later from a pending record: why, when

# a FAILED run's error (set before the status; relevance.tracking.interrupted and .pending read it)
ERROR_TAG = "error"
MAX_PARAMS_PER_CALL = 100  # MLflow's limit on the params of one log_batch call
