"""measure: running a bench. The validated config, the plan of cells in a balanced order, the
containers (server, nginx reference, load generator) and their cgroup CPU time, the server's
live counters, the load generators behind one interface (measure.loadgen), the images and what
they hold, the manifest, and the bench loop itself, which appends samples to the run directory.
Imports zcbench.core, zcbench.devtools and zcbench.host; never analyze or present (jobs hands
the bench a report to render)."""
