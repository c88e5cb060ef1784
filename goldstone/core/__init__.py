"""The foundation every finding stands on: the observable API (declared state, results, hooks,
the `Monitor` and its Trainer callback, checkpoint scans), reading weights, configs, errors,
atomic files, progress. Nothing here knows about runs, sweeps or experiments (see `goldstone.lab`)."""
