"""Ground-truth control for SAEBench's absorption metric, and the masking mechanism tested where the truth is known.

SAEs trained on SAELens's synthetic hierarchical features (`synthetic`) are scored twice (`metrics`): true
absorption from the known features and SAEBench's measured absorption; `run` trains and measures cell by cell,
`report` writes `results.json`, the plots and the README. Run it with
`python -m research.absorption_control --out docs/absorption_control`.
"""
