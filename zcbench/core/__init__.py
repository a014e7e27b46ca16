"""core: what every layer shares and nothing else. Paths of the project's files, the run
directory and its schema (rundir), one measured cell (samples), the send arms (arms), atomic
writes and number formatting. Imports nothing from zcbench outside core."""
