"""Research that lives beside the package and never ships in its wheel: the ground-truth absorption control
(`research.absorption_control`), the study pages' generated blocks (`research.study_pages`) and the commands that
publish the studies' figures, the absorption-validity runs, the OOD signal table, and the offline stand-ins of the
paper recipes' hub models.

Each module runs from the repository root as `python -m research.<module>`; it may import `sae_mask_plugin`, never
the other way round (a test checks it).
"""
