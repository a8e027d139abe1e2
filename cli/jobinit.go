package cli

import "sprite/migrate"

func init() {
	// _jobinit is the helper the daemon's executor starts for each job
	// (migrate.StartJobInit): it sets the job up and execs it.
	registerHidden(migrate.JobInitCommand, func([]string) error {
		_ = migrate.RunJobInit() // reported on the status pipe already
		return exitError{code: migrate.ExitSetupFailed}
	})
}
