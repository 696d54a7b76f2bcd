package kinds

is_job if input.kind == "Job"

is_cron if input.kind == "CronJob"
