"""`cervixscope bench`: where the time goes, against a baseline run in the same process and
against the hardware's limit. One module per part:

- (a) ``training_loop``: the fine-tuning loop against a bare forward/backward/step loop;
- (b) ``features_cv``: features-mode CV against the obvious DataLoader + PIL implementation;
- (c) ``scaling``: features CV over one embedding pass, at 1x, 2x and 4x the demo cohort;
- (m) ``memory``: the bootstrap's memory on 10,000 cases;
- (p) ``pages``: what a researcher waits for on the dashboard;
- ``executors``: the Ray executor against the local one (``--ray``);
- ``machine``: the CPU, cores, memory, Python and OS every figure was taken on.

``runner.run_bench`` runs the parts, ``report.format_table`` prints them; ``children`` runs a part
in a fresh interpreter. Nothing is imported here, so a child that needs only ``children`` or
``pages`` never loads torch.
"""
