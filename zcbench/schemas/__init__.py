"""The JSON Schemas of the files a run directory holds (core.rundir names their versions)."""
