"""Many videos at once (`p3m batch`): the inputs and the outputs they get (inputs.py), one video in a worker
(worker.py), a process pool here (local_pool.py) or Ray tasks on a cluster (ray_tasks.py), the progress bar
(progress.py), the report (report.py), and the job that joins them (run.py)."""
