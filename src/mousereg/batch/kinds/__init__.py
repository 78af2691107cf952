"""The built-in job kinds; each module registers its kinds with ``job_kind``."""
