"""The orchestration of ``m1eval run``: planning and generating samples into a run folder
(``runner``), the run-level stages that grade and summarise a stored run (``stages``) and
the per-sample seeds that make resumes exact (``seeding``)."""
