"""present: what a reader sees. report.md, the plots, the environment table, compare's and
calibration's pages, all rendered from analyze's summaries and the run directory. Imports
zcbench.core and zcbench.analyze."""
