"""host: the machines a bench runs on. The inventory of hosts, the facts of a host (collected
here, or over SSH by the same collectors), the io_uring probe, provisioning through Ansible,
doctor (what provisioning wants against what the host has), a host's Docker engine, and the lab
(a second host on this machine). Imports zcbench.core and zcbench.devtools, nothing above."""
