package team

import data.shared

deny contains msg if {
	shared.is_job
	not input.spec.backoffLimit
	msg := sprintf("job %s has no backoffLimit", [input.metadata.name])
}
