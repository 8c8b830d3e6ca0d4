"""`python -m bench`: netcore measured against iproute2 baselines, side by side in the same run.

Every measurement happens inside throwaway "host" network namespaces named with the run's prefix
(`sbbench-<random4>`), entered with `nsenter --net=...`; everything is deleted in a `finally`.
Ratios (baseline seconds / netcore seconds), not absolute timings, are the result.
"""
