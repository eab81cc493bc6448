
0.1.0
host_facts (