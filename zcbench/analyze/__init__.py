"""analyze: numbers from stored samples, nothing measured or rendered. The metric registry, the
paired statistics (stats: generic; runstats: a run's groups and comparisons), the run's summary
and its sweep reading, comparing two runs, the calibration's sizing and verdicts, and the memlock
explanations. Imports only zcbench.core."""
