package main

import data.kinds

deny contains msg if {
	kinds.is_job
	trace("checking the job")
	not input.spec.backoffLimit
	msg := "job has no backoffLimit"
}

deny contains msg if {
	kinds.is_cron
	msg := "cron jobs are not allowed"
}
