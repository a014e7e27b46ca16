"""devtools: the project's own tooling, not the testbed's: the whole test suite with a summary
per area (`invoke test`), and the hash-checked lock of the Python packages (`invoke lock`).
Imports only zcbench.core."""
