"""zcbench: does io_uring zero-copy send help my server on my host?

The package's layers, each importing only from the ones before it:

    core      the data every layer shares: paths, the run directory, samples, arms, formatting
    devtools  the project's own tooling: the test suite, the lock file
    host      the machine: inventory, facts, io_uring probe, provisioning, doctor, lab
    measure   running a bench: config, plan, containers, load generators, counters, images
    analyze   numbers from stored samples: metrics, statistics, summary, compare, calibration
    present   report.md, report.html, plots, environment rows
    jobs      one function per task (measure, then analyze and present); tasks and cli on top
"""

__version__ = "0.1.0"
