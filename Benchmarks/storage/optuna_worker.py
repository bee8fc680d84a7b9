"""Optuna's side of the storage benchmark: one worker process doing ask/tell on RDBStorage.

Each trial does what edgenas-storage-worker does: take a trial, sample one float, finish it
with its value. RandomSampler keeps the sampler's cost out of a storage comparison. Prints
the loop's own time (imports and connection set-up excluded), as the Swift worker does.

    python3 optuna_worker.py URL STUDY TRIALS
"""
import sys
import time

import optuna

optuna.logging.set_verbosity(optuna.logging.WARNING)
url, name, trials = sys.argv[1], sys.argv[2], int(sys.argv[3])
storage = optuna.storages.RDBStorage(url, engine_kwargs={"pool_pre_ping": True})
study = optuna.load_study(study_name=name, storage=storage, sampler=optuna.samplers.RandomSampler(seed=0))
start = time.perf_counter()
for _ in range(trials):
    trial = study.ask()
    x = trial.suggest_float("x", -10, 10)
    study.tell(trial, (x - 2) ** 2)
print(f"finished {trials} trials in {time.perf_counter() - start} s")
