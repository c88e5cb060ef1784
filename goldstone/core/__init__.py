"""The core every finding stands on: observables, runs, sweeps, reports."""
