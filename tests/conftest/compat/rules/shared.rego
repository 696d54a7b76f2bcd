package shared

is_job if input.kind == "Job"
